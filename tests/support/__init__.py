"""Everything the suites share that is not a test or a fixture: server launchers, raw
clients, proxies and each suite's helpers, one module each, so a test module imports only
from here and never from another test module."""
