"""Tornado ``RequestHandler`` code from Bokeh auth modules, run without a Tornado server.

Auth modules written for ``bokeh serve`` call Tornado's handler API: ``get_user(handler)``
reads ``handler.get_cookie``/``get_signed_cookie``/``request.headers``, and their
``LoginHandler``/``LogoutHandler`` classes call ``get_argument``, ``set_cookie``,
``set_signed_cookie``, ``redirect``, ``render`` (templates next to the module, with
``xsrf_form_html()``), ``clear_cookie`` and ``write``. Rather than imitate that API we use
Tornado itself: a real ``HTTPServerRequest`` is built from the WSGI environ, attached to
a connection object that only captures what the handler writes, and handed to a real
``tornado.web.Application`` carrying ``cookie_secret`` and ``xsrf_cookies``. Cookie
signing, XSRF tokens and templates therefore behave exactly as under ``bokeh serve``.

:meth:`TornadoBridge.run` steps the handler itself from the request's greenlet instead of
awaiting ``RequestHandler._execute``: body parsing, the XSRF check, ``prepare``, the method,
``finish``; exceptions go to Tornado's own error handling, so a failed XSRF check is
Tornado's 403. Coroutine methods run on the worker's asyncio loop
(:func:`app.runtime.asyncio_loop.resolve`). The futures Tornado expects back from the connection
are created already resolved, on a loop object that is never run.

No Flask here: the web layer passes the environ and body bytes in and turns the captured
:class:`HandlerResponse` into its own response.
"""
from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, overload
from urllib.parse import quote

import tornado.web
from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPInputError,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
    parse_body_arguments,
)

from ..runtime.asyncio_loop import resolve
from ..sessions.errors import HTTPError

#: Methods whose requests Tornado checks for an XSRF token when ``xsrf_cookies`` is on.
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: Characters a request path keeps unescaped when rebuilt from PATH_INFO.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
#: Headers Tornado adds that the WSGI server writes itself.
_SERVER_HEADERS = {"server", "date", "transfer-encoding", "connection"}


@functools.lru_cache(maxsize=1)
def _never_run_loop() -> asyncio.AbstractEventLoop:
    """The loop that owns the already-resolved futures Tornado gets back from writes."""
    return asyncio.new_event_loop()


def _done_future() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.Future(loop=_never_run_loop())
    future.set_result(None)
    return future


@dataclass
class _ConnectionContext:
    """What ``HTTPServerRequest`` reads from ``connection.context``."""

    remote_ip: str
    protocol: str


@dataclass
class HandlerResponse:
    """Everything a handler wrote: status line, headers (repeats kept), body."""

    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class CapturingConnection(HTTPConnection):
    """The ``HTTPConnection`` a handler writes to: keeps the response in memory."""

    def __init__(self, remote_ip: str, protocol: str) -> None:
        self.context = _ConnectionContext(remote_ip, protocol)
        self.response = HandlerResponse()
        self._chunks: list[bytes] = []

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        """A buffered WSGI response has no early client close to report."""

    def write_headers(self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders,
                      chunk: bytes | None = None) -> asyncio.Future[None]:
        assert isinstance(start_line, ResponseStartLine)  # a handler writes a response
        self.response.status = start_line.code
        self.response.reason = start_line.reason
        self.response.headers = [(k, v) for k, v in headers.get_all()
                                 if k.lower() not in _SERVER_HEADERS]
        return self.write(chunk or b"")

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        if chunk:
            self._chunks.append(chunk)
        return _done_future()

    def finish(self) -> None:
        self.response.body = b"".join(self._chunks)


def _request_uri(environ: Mapping[str, Any]) -> str:
    """The request target as Tornado's ``request.uri`` gives it: path and query."""
    raw_path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
    path = quote(raw_path.encode("latin-1", "replace"), safe=_PATH_SAFE)
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def _headers(environ: Mapping[str, Any]) -> HTTPHeaders:
    headers = HTTPHeaders()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.add(key[5:].replace("_", "-"), value)
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.add(key.replace("_", "-"), environ[key])
    if "Host" not in headers:
        headers["Host"] = f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    return headers


class CookieRecordingHandler(tornado.web.RequestHandler):
    """A request handler that notes which cookies are read through it: those an auth
    module's ``get_user`` reads carry the login, and must not go into session tokens."""

    def initialize(self) -> None:
        self.cookies_read: set[str] = set()

    @overload
    def get_cookie(self, name: str, default: str) -> str: ...

    @overload
    def get_cookie(self, name: str, default: None = None) -> str | None: ...

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        self.cookies_read.add(name)
        return super().get_cookie(name, default)

    def get_signed_cookie(self, name: str, value: str | None = None, *args: Any, **kwargs: Any) -> bytes | None:
        self.cookies_read.add(name)
        return super().get_signed_cookie(name, value, *args, **kwargs)

    get_secure_cookie = get_signed_cookie


class TornadoBridge:
    """One server's Tornado application settings and the handlers run under them."""

    def __init__(self, cookie_secret: str | None = None, xsrf_cookies: bool = False) -> None:
        settings: dict[str, Any] = {"xsrf_cookies": xsrf_cookies}
        if cookie_secret:
            settings["cookie_secret"] = cookie_secret
        # template_path stays unset: Tornado then looks next to the handler's own module,
        # which is where auth modules keep their login.html (as under bokeh serve)
        self.application = tornado.web.Application(**settings)

    def build_request(self, environ: Mapping[str, Any], body: bytes = b"") -> HTTPServerRequest:
        """A Tornado request for the WSGI request ``environ`` (HTTPError 400 if malformed)."""
        connection = CapturingConnection(environ.get("REMOTE_ADDR", ""),
                                         environ.get("wsgi.url_scheme", "http"))
        start_line = RequestStartLine(environ.get("REQUEST_METHOD", "GET"), _request_uri(environ),
                                      environ.get("SERVER_PROTOCOL", "HTTP/1.1"))
        try:
            return HTTPServerRequest(start_line=start_line, headers=_headers(environ), body=body,
                                     connection=connection)
        except HTTPInputError as exc:
            raise HTTPError(400, str(exc)) from None

    def request_handler(self, environ: Mapping[str, Any]) -> CookieRecordingHandler:
        """What ``get_user(request_handler)`` receives: a plain handler for this request,
        which remembers the cookies it was asked for."""
        return CookieRecordingHandler(self.application, self.build_request(environ))

    def run(self, handler_class: type[tornado.web.RequestHandler], environ: Mapping[str, Any],
            body: bytes) -> HandlerResponse:
        """Serve one request with ``handler_class`` and return what it wrote."""
        request = self.build_request(environ, body)
        handler = handler_class(self.application, request)
        handler._transforms = []  # framing (chunking, gzip) is the WSGI server's job
        try:
            method = request.method or "GET"
            if method not in handler.SUPPORTED_METHODS:
                raise tornado.web.HTTPError(405)
            try:
                parse_body_arguments(request.headers.get("Content-Type", ""), request.body,
                                     request.body_arguments, request.files, request.headers)
            except HTTPInputError as exc:
                raise tornado.web.HTTPError(400, "Invalid body: %s", exc) from exc
            for name, values in request.body_arguments.items():
                request.arguments.setdefault(name, []).extend(values)
            if method not in _SAFE_METHODS and self.application.settings.get("xsrf_cookies"):
                handler.check_xsrf_cookie()
            resolve(handler.prepare())
            if not handler._finished:
                resolve(getattr(handler, method.lower())())
                if handler._auto_finish and not handler._finished:
                    handler.finish()
        except Exception as exc:
            handler._handle_request_exception(exc)
        if not handler._finished:
            raise HTTPError(500, f"{handler_class.__name__} did not finish its response")
        connection = request.connection
        assert isinstance(connection, CapturingConnection)
        return connection.response
