"""The base of every bokeh-flask view: the core, the auth step, and error answers.

Views are ``MethodView`` classes named and shaped like ``bokeh.server.views``; each one
reads the request, calls :mod:`app`, and writes the answer. Errors raised as
:class:`app.errors.HTTPError` become a plain-text answer with their status here, in one
place.
"""
from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView

from ..app.errors import HTTPError
from ..app.requests import RequestInfo
from ..app.server import ServerCore


def error_response(error: HTTPError) -> Response:
    return Response(f"{error.status}: {error.reason}\n", status=error.status,
                    content_type="text/plain; charset=utf-8")


class BokehView(MethodView):
    """A view bound to one :class:`ServerCore` (passed to ``as_view``)."""

    def __init__(self, core: ServerCore, **kwargs: Any) -> None:
        self.core = core
        self.options = kwargs

    def dispatch_request(self, **kwargs: Any) -> Any:
        self.core.ensure_started()
        try:
            prepare = getattr(self, "prepare", None)
            if prepare is not None:
                early = prepare()
                if early is not None:
                    return early
            return super().dispatch_request(**kwargs)
        except HTTPError as error:
            return error_response(error)

    @staticmethod
    def request_info() -> RequestInfo:
        return RequestInfo.from_environ(request.environ)
