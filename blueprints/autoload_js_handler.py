"""AutoloadJsHandler: ``<prefix>/<app>/autoload.js`` for ``server_document`` embeds.

The script carries a session token, and with the browser's cookies a login: so a page of
another origin may read it only when that origin may open the app's websocket anyway (the
``--allow-websocket-origin`` list, or the server's own origin). Such an origin gets a
credentialed CORS grant for itself on every answer (errors included); any other gets none
(Bokeh grants every origin, credentials included). ``Vary: Origin`` always, so no cache
serves one origin's answer to another. OPTIONS preflights are answered without
authentication or session work, with or without an ``Origin`` (Bokeh answers 500 without).
"""
from __future__ import annotations

from flask import Response, make_response, request
from werkzeug.wrappers import Response as BaseResponse

from ..app.apps import pages
from ..app.config.origins import served_address
from ..app.sessions.errors import HTTPError
from ..app.sessions.requests import last_argument
from ..app.sessions.server import ServerCore
from .session_handler import SessionHandler
from .views import error_response


def _cors(core: ServerCore, response: Response) -> Response:
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if not origin or not core.origins.allows(origin, request.headers.get("Host"), served_address(request.environ)):
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        # a credentialed answer cannot use "*": name what the preflight asks for
        # (server_session() adds Bokeh-Session-Id)
        wanted = request.headers.get("Access-Control-Request-Headers")
        if wanted:
            response.headers["Access-Control-Allow-Headers"] = wanted
    return response


class AutoloadJsHandler(SessionHandler):
    def prepare(self) -> BaseResponse | None:
        if request.method == "OPTIONS":
            return None
        return super().prepare()

    def dispatch_request(self, **kwargs: object) -> Response:
        return _cors(self.core, make_response(super().dispatch_request(**kwargs)))

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
            root = pages.root_url(request.script_root + self.route_options["prefix"], absolute_url)
            resources = pages.resources_for(root)
        script = pages.autoload_script(session.token, element_id, app_path, absolute_url, resources)
        return Response(script, content_type="application/javascript")
