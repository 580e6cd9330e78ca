"""Fixtures for the core tests (no servers: the core is I/O free)."""
from __future__ import annotations

import gevent
import pytest


@pytest.fixture(autouse=True)
def fresh_loop_time():
    """Refresh the gevent loop's cached clock before each test.

    Tests that never yield to the hub (hypothesis runs of several seconds) leave the loop's
    cached "now" stale; the next timeout started from it would expire at once.
    """
    gevent.get_hub().loop.update_now()
    yield

