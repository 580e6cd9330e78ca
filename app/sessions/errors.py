"""Errors that carry their own answer: an HTTP status or a websocket close code.

Core code raises these; the transport turns them into a response or a close frame in
one place, so no view repeats try/except boilerplate.
"""
from __future__ import annotations

#: Close codes we send. Bokeh sends 10000/10001, outside RFC 6455's 1000-4999 range,
#: which strict clients reject; we use the registered and private-use equivalents.
#: RFC 6455's "going away": the server is shutting down (BokehJS reconnects at once).
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INTERNAL_ERROR = 1011
#: A session that can no longer be served (destroyed, token expired mid-way).
CLOSE_SESSION_GONE = 4000


class HTTPError(Exception):
    """A request that cannot be served: answered with ``status``, a plain-text ``reason``
    and any ``headers`` the answer must carry (``Retry-After`` ...)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


class WebSocketClose(Exception):
    """A websocket that must be closed with ``code`` (1000-4999) and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]  # a close reason must fit one control frame
