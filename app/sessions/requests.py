"""A Tornado-shaped view of an HTTP request, built from a WSGI environ.

Bokeh app code and ``app_hooks.process_request`` expect Tornado's ``HTTPServerRequest``
attribute names (``uri``, ``path``, ``query``, ``arguments`` as ``dict[str, list[bytes]]``
with blank values kept, ``headers``, ``cookies``, ``remote_ip``, ``host``, ``protocol``).
This module builds that from the environ alone: no Flask request globals, no sockets.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar
from urllib.parse import unquote_to_bytes

from werkzeug.http import parse_cookie

_Request = TypeVar("_Request", bound="RequestInfo")


def _title_case(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def parse_arguments(query: str) -> dict[str, list[bytes]]:
    """Query arguments as Tornado gives them: every value, as raw bytes, blanks kept.

    ``query`` is a WSGI ``QUERY_STRING`` (bytes decoded as latin-1, per PEP 3333).
    """
    raw = query.encode("latin-1", "replace")
    args: dict[str, list[bytes]] = {}
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        args.setdefault(key, []).append(unquote_to_bytes(value.replace(b"+", b" ")))
    return args


def last_argument(arguments: Mapping[str, list[bytes]], name: str) -> str | None:
    """Tornado's ``get_argument``: the last value, stripped, control characters as spaces."""
    values = arguments.get(name)
    if not values:
        return None
    text = values[-1].decode("utf-8", "replace")
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).strip()


@dataclass
class RequestInfo:
    """What a Bokeh app may read about the request that created its session."""

    method: str = "GET"
    path: str = "/"
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    arguments: dict[str, list[bytes]] = field(default_factory=dict)
    remote_ip: str = ""
    protocol: str = "http"

    @property
    def uri(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def host(self) -> str:
        return self.headers.get("Host", "")

    @property
    def full_url(self) -> str:
        return f"{self.protocol}://{self.host}{self.uri}"

    @classmethod
    def from_environ(cls: type[_Request], environ: Mapping[str, Any]) -> _Request:
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[_title_case(key[5:].replace("_", "-"))] = value
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[_title_case(key.replace("_", "-"))] = environ[key]
        query = environ.get("QUERY_STRING", "")
        path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
        path = path.encode("latin-1", "replace").decode("utf-8", "replace")
        return cls(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=path,
            query=query,
            headers=headers,
            cookies=dict(parse_cookie(headers.get("Cookie", ""))),
            arguments=parse_arguments(query),
            remote_ip=environ.get("REMOTE_ADDR", ""),
            protocol=environ.get("wsgi.url_scheme", "http"),
        )


class RequestProxy:
    """``session_context.request``: token payload values first, the live request after.

    Bokeh rebuilds the request from the token so a session created on another worker
    sees the headers, cookies and arguments of the page request that minted it.
    """

    def __init__(self, request: RequestInfo | None, payload: Mapping[str, Any]) -> None:
        self._request = request or RequestInfo()
        args = payload.get("arguments")
        if args is None:
            args = self._request.arguments
        self.arguments: dict[str, list[bytes]] = {
            k: list(v) for k, v in args.items() if k != "bokeh-session-id"
        }
        cookies = payload.get("cookies")
        self.cookies: dict[str, str] = dict(cookies if cookies is not None else self._request.cookies)
        headers = payload.get("headers")
        self.headers: dict[str, str] = dict(headers if headers is not None else self._request.headers)
        if cookies and headers is not None and "Cookie" not in self.headers:
            self.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def is_loopback(address: str) -> bool:
    """Whether a client address is this machine's (127.0.0.0/8, ``::1``, or IPv4 loopback in
    IPv6 form); anything else, a Unix socket's empty address included, is not."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback
