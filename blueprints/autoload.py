"""AutoloadJsHandler: ``<prefix>/<app>/autoload.js`` for ``server_document`` embeds.

CORS headers go on every answer (errors included) so embedding pages on other origins can
read them; OPTIONS preflights are answered without authentication or session work, with or
without an ``Origin`` (Bokeh answers 500 without one).
"""
from __future__ import annotations

from flask import Response, request

from ..app import pages
from ..app.requests import last_argument
from ..app.errors import HTTPError

from .session import SessionHandler
from .views import error_response


def _cors(response: Response) -> Response:
    origin = request.headers.get("Origin")
    allow_origin = "*"
    if origin and (request.method == "OPTIONS" or request.cookies):
        # a credentialed CORS answer may not use the wildcard
        allow_origin = origin
    response.headers["Access-Control-Allow-Origin"] = allow_origin
    response.headers["Access-Control-Allow-Headers"] = "*"
    response.headers["Access-Control-Allow-Credentials"] = "true"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "PUT, GET, OPTIONS"
    return response


class AutoloadJsHandler(SessionHandler):
    def prepare(self) -> Response | None:
        if request.method == "OPTIONS":
            return None
        return super().prepare()

    def dispatch_request(self, **kwargs: object) -> Response:
        result = super().dispatch_request(**kwargs)
        response = result if isinstance(result, Response) else Response(result)
        return _cors(response)

    def options(self) -> Response:
        return Response("", status=200, content_type="text/plain")

    def get(self) -> Response:
        info = self.request_info()
        element_id = last_argument(info.arguments, "bokeh-autoload-element")
        if not element_id:
            return error_response(HTTPError(400, "No bokeh-autoload-element query parameter"))
        session = self.get_session()
        app_path = last_argument(info.arguments, "bokeh-app-path") or "/"
        absolute_url = last_argument(info.arguments, "bokeh-absolute-url") or None
        resources = None
        if last_argument(info.arguments, "resources") != "none":
            resources = pages.resources_for(pages.root_url(request.script_root + self.route_options["prefix"], absolute_url))
        script = pages.autoload_script(session.token, element_id, app_path, absolute_url, resources)
        return Response(script, content_type="application/javascript")
