"""The base of every bokeh-flask view: the core, the auth step, and error answers.

Views are ``MethodView`` classes named and shaped like ``bokeh.server.views``; each one
reads the request, calls :mod:`app`, and writes the answer. Errors raised as
:class:`app.sessions.errors.HTTPError` become a plain-text answer with their status here, in one
place.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Response, request
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import WebsocketMismatch
from werkzeug.wrappers import Response as BaseResponse

from ..app.apps.load_errors import AppLoadError
from ..app.sessions.errors import HTTPError
from ..app.sessions.requests import RequestInfo, is_loopback
from ..app.sessions.server import ServerCore

#: What a client on another machine learns of an app that failed to load under ``--dev``
#: (the message can hold secrets; a client on this machine gets it).
LOAD_FAILED = "the app failed to load; see the server's terminal"

log = logging.getLogger(__name__)


def error_response(error: HTTPError) -> Response:
    if error.status == 404:  # as bokeh serve's access log: a mistyped URL shows in the log
        log.info("404 %s %s (%s)", request.method, request.path, request.remote_addr)
    return Response(f"{error.status}: {error.reason}\n", status=error.status,
                    content_type="text/plain; charset=utf-8", headers=error.headers)


def http_exception_response(error: HTTPException) -> Response:
    """Werkzeug's routing errors (404, 405, 400) as short plain text, not an HTML page."""
    reason = error.description or error.name
    if isinstance(error, WebsocketMismatch):  # its description only blames the browser
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        reason = ("Websocket connections go to <app>/ws, not to this path" if upgrade
                  else 'Can "Upgrade" only to "WebSocket".')
    response = error_response(HTTPError(error.code or 500, reason))
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


class BokehView(MethodView):
    """A view bound to one :class:`ServerCore` (passed to ``as_view``)."""

    def __init__(self, core: ServerCore, **kwargs: Any) -> None:
        self.core = core
        self.route_options = kwargs

    def head(self, **kwargs: Any) -> Response:
        """Bokeh's page views answer GET only; HEAD must not create a session."""
        raise HTTPError(405, "Method Not Allowed")

    def dispatch_request(self, **kwargs: Any) -> ResponseReturnValue:
        self.core.ensure_started()
        try:
            prepare = getattr(self, "prepare", None)
            if prepare is not None:
                early: BaseResponse | None = prepare()  # AuthRequestHandler.prepare's answer
                if early is not None:
                    return early
            return super().dispatch_request(**kwargs)
        except HTTPError as error:
            return error_response(error)
        except AppLoadError as error:  # --dev keeps serving an app that failed to load
            return error_response(HTTPError(500, str(error) if is_loopback(request.remote_addr or "")
                                            else LOAD_FAILED))

    @staticmethod
    def request_info() -> RequestInfo:
        return RequestInfo.from_environ(request.environ)
