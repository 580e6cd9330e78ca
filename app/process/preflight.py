"""What the gunicorn master checks before it binds or forks: each problem a user causes at
start-up (a port in use, an address this machine does not have, a port only root may bind)
becomes one line naming the port and the flag to change, instead of gunicorn's five bind
retries and their error lines.

Run from the ``on_starting`` hook, so ``bokeh-flask serve`` and ``gunicorn -c
gunicorn.conf.py`` both get it. Inherited listeners (a ``kill -HUP`` reload, systemd socket
activation) are not checked: gunicorn binds nothing then.
"""
from __future__ import annotations

import errno
import os
import socket
from typing import Any

from ..config.declare import SettingsError

#: What a bind address can be in gunicorn's parsed config: (host, port), a Unix socket
#: path, or an inherited descriptor.
Address = Any


def inherited_listeners() -> bool:
    """Whether gunicorn takes its listeners from its parent or systemd instead of binding."""
    return bool(os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS"))


def check_binds(addresses: list[Address]) -> None:
    """Bind each TCP address once and let it go; :class:`SettingsError` on the first that
    gunicorn could not bind either."""
    for address in addresses:
        if isinstance(address, tuple) and len(address) == 2:
            _check_bind(str(address[0]), int(address[1]))


def _check_bind(host: str, port: int) -> None:
    shown = f"{host}:{port}" if host not in ("", "0.0.0.0", "::") else f"port {port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise SettingsError(f"cannot listen on {host!r}: no such address (--address, or gunicorn's -b)") from None
    family, kind, proto, _, sockaddr = infos[0]
    probe = socket.socket(family, kind, proto)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        probe.bind(sockaddr)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(f"Cannot start Bokeh server, port {port} is already in use: stop what uses "
                                f"it, or choose another port (--port N, or gunicorn's -b HOST:N)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise SettingsError(f"cannot listen on {shown}: this machine has no such address "
                                f"(--address, or gunicorn's -b)") from None
        if exc.errno == errno.EACCES:
            raise SettingsError(f"cannot listen on {shown}: ports below 1024 need root "
                                f"(choose another with --port, or put a proxy in front)") from None
        raise SettingsError(f"cannot listen on {shown}: {exc.strerror}") from None
    finally:
        probe.close()
