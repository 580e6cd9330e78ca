"""The websocket origin allowlist: parsed and validated once, matched per handshake.

Semantics follow ``bokeh serve --allow-websocket-origin``: ``host[:port]`` entries, ``*``
wildcards for a whole entry, a port, or one hostname label. Where Bokeh is loose we are
strict on purpose: labels match exactly (case-insensitive), so ``dashboard.corp`` never
admits ``dashboard.corp.attacker.com`` or ``evil-dashboard.corp``, and an entry without a
port means the origin scheme's default port (80 for http, 443 for https).

With no entries, Bokeh allows ``localhost:<port>``; here the port is the one the client's
connection reached (its socket's local address), since under ``gunicorn -b`` or ``flask
run`` the ``port`` setting need not be the served one. That local IP literal with the same
port is allowed too: only pages of this server can have it as their origin. The ``Host``
header is never used for this (DNS rebinding); a Unix socket falls back to the setting.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from .declare import SettingsError

_LABEL = re.compile(r"\*|[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")
_DEFAULT_PORTS = {"http": "80", "ws": "80", "https": "443", "wss": "443"}


@dataclass(frozen=True)
class OriginPattern:
    """One allowlist entry: host labels (``*`` allowed per label) and a port (``*``, digits or None)."""

    labels: tuple[str, ...] | None  # None: any host
    port: str | None  # None: the scheme's default port

    def matches(self, host: str, port: str, default_port: str) -> bool:
        if self.port == "*":
            pass
        elif self.port is None:
            if port != default_port:
                return False
        elif self.port != port:
            return False
        if self.labels is None:
            return True
        labels = host.split(".")
        return len(labels) == len(self.labels) and all(
            p == "*" or p == label for p, label in zip(self.labels, labels)
        )


@dataclass(frozen=True)
class OriginAllowlist:
    """The parsed allowlist; build with :meth:`parse`."""

    patterns: tuple[OriginPattern, ...]
    entries: tuple[str, ...]
    #: no entries were given: the default follows the address each connection reached
    follows_served: bool = False

    @classmethod
    def parse(cls, entries: tuple[str, ...] | list[str], port: int | None) -> "OriginAllowlist":
        """Parse entries; with none, allow ``localhost:<served port>`` as Bokeh allows
        ``localhost:<its port>``, and ``localhost:<port>`` where the served one is unknown."""
        given = tuple(entries)
        entries = given or ((f"localhost:{port}",) if port else ())
        return cls(tuple(_parse_entry(e) for e in entries), entries, not given)

    def allows(self, origin: str, host_header: str | None = None,
               served: tuple[str, int] | None = None) -> bool:
        """Whether a handshake with this ``Origin`` (and ``Host``) may proceed; ``served``
        is the local (IP, port) the connection reached (:func:`served_address`).

        No Origin (non-browser clients such as ``bokeh.client``) is allowed, as in Bokeh;
        so is an Origin equal to the request's own Host (same-origin, as Tornado 6.6).
        """
        if not origin:
            return True
        parsed = _split_origin(origin)
        if parsed is None:
            return False
        scheme, host, port = parsed
        default_port = _DEFAULT_PORTS.get(scheme, "80")
        if host_header:
            own = _split_hostport(host_header.lower(), default_port)
            if own == (host, port):
                return True
        if self.follows_served and served is not None:
            return port == str(served[1]) and host in ("localhost", served[0])
        return any(p.matches(host, port, default_port) for p in self.patterns)


#: Where WSGI servers put the client's socket: gunicorn (``gunicorn.sock`` in its pywsgi
#: worker) and werkzeug's ``flask run``.
_SOCKET_KEYS = ("gunicorn.socket", "gunicorn.sock", "werkzeug.socket")


def served_address(environ: Mapping[str, Any]) -> tuple[str, int] | None:
    """The local (IP, port) of the client's connection: the bound address it reached, whatever
    the ``port`` setting says. None for a Unix socket or a server that does not say."""
    sock = next((environ[key] for key in _SOCKET_KEYS if environ.get(key) is not None), None)
    try:
        address = sock.getsockname() if sock is not None else None
    except (OSError, AttributeError):
        return None
    if not isinstance(address, tuple) or len(address) < 2:
        return None
    host = str(address[0]).lower()
    if host.startswith("::ffff:") and "." in host:  # an IPv4 client of a dual-stack socket
        host = host[len("::ffff:"):]
    return host, int(address[1])


def _split_origin(origin: str) -> tuple[str, str, str] | None:
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    default = _DEFAULT_PORTS.get(parts.scheme, "80")
    return parts.scheme, parts.hostname, str(port) if port is not None else default


def _split_hostport(value: str, default_port: str) -> tuple[str, str]:
    if value.startswith("["):  # IPv6 literal
        host, _, rest = value[1:].partition("]")
        return host, rest.lstrip(":") or default_port
    host, _, port = value.partition(":")
    return host, port or default_port


def _parse_entry(entry: str) -> OriginPattern:
    text = entry.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.rstrip("/")
    if text == "*":
        return OriginPattern(None, "*")
    host, sep, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not sep:
        host, port = text, ""
    if not host or ":" in host or "/" in host:
        raise SettingsError(f"--allow-websocket-origin: {entry!r} is not of the form HOST[:PORT]")
    if port and port != "*" and not port.isdigit():
        raise SettingsError(f"--allow-websocket-origin: port of {entry!r} must be a number or *")
    labels = None if host == "*" else tuple(host.split("."))
    if labels is not None and not all(_LABEL.fullmatch(label) for label in labels):
        raise SettingsError(f"--allow-websocket-origin: {entry!r} is not a valid host name "
                            "(labels of letters, digits, '-' or '*')")
    return OriginPattern(labels, port or None)
