"""Debian's HAProxy in front of real bokeh-flask servers, for the load-balancer tests.

It runs ``examples/deploy/haproxy.cfg``, the file README's Deployment section points to, as
it is except for its ``bind`` port and its servers' addresses (names and cookie values
stay), so the documented config and the tested one cannot drift apart. A main config of
the test's own (``global`` and ``defaults``, as Debian's /etc/haproxy/haproxy.cfg has them)
comes first; HAProxy runs in the foreground (``-db``) on a free loopback port, and the
system's HAProxy, its config and port 80 are never touched.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import IN_CI, ROOT, Server, free_port, spawn

HAPROXY = "/usr/sbin/haproxy"
CONFIG = ROOT / "examples" / "deploy" / "haproxy.cfg"

_BIND_RE = re.compile(r"^(\s*)bind :80$", re.M)
_SERVER_RE = re.compile(r"^(\s*server \S+ )(\S+)( .*)$", re.M)

#: What Debian's haproxy.cfg has before the shipped sections, minus what needs root or
#: the system's folders (chroot, user, stats socket, syslog).
_MAIN = """global
    maxconn 4096

defaults
    mode http
    log global
    timeout connect 5s
    timeout client 50s
    timeout server 50s
"""


def require_haproxy() -> None:
    """Skip without HAProxy locally; under ``CI=true`` a missing HAProxy is a failure."""
    if not Path(HAPROXY).exists():
        if IN_CI:
            pytest.fail(f"{HAPROXY} is missing; CI must install Debian's haproxy (make haproxy)")
        pytest.skip(f"{HAPROXY} is not installed (make haproxy)")


def shipped_config(upstreams: list[str], listen: str) -> str:
    """examples/deploy/haproxy.cfg with its bind address and its servers' addresses replaced."""
    text = CONFIG.read_text()
    text, binds = _BIND_RE.subn(rf"\1bind {listen}", text)
    assert binds == 1, f"expected one 'bind :80' line in {CONFIG}, found {binds}"
    servers = iter(upstreams)
    text, count = _SERVER_RE.subn(lambda m: m.group(1) + next(servers) + m.group(3), text)
    assert count == len(upstreams), f"{CONFIG} lists {count} servers, the test {len(upstreams)}"
    return text


def start_haproxy(upstreams: list[str], folder: Path, timeout: float = 30.0) -> Server:
    """Run HAProxy in the foreground in front of ``upstreams`` and wait until it answers;
    ``stop()`` (SIGTERM) is its hard stop: open websockets are cut, not waited for."""
    require_haproxy()
    port = free_port()
    main = folder / "main.cfg"
    main.write_text(_MAIN)
    site = folder / "haproxy.cfg"
    site.write_text(shipped_config(upstreams, f"127.0.0.1:{port}"))
    problems = config_problems(main, site)
    assert not problems, problems
    command = [HAPROXY, "-db", "-f", str(main), "-f", str(site)]
    return spawn("haproxy", command, port, dict(os.environ), ready=lambda status: status < 500,
                 ready_path="/readyz", timeout=timeout, cwd=folder, log_path=folder / "haproxy.out")


def config_problems(*configs: Path) -> str:
    """``haproxy -c``: '' when the configs are valid and give no warning, else its output."""
    result = subprocess.run([HAPROXY, "-c", *(arg for path in configs for arg in ("-f", str(path)))],
                            capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    return "" if result.returncode == 0 and "WARNING" not in output else output
