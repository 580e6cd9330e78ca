"""EmbedJsonHandler: Bokeh 4's ``<prefix>/<app>/embed.json``, where BokehJS 4 gets a session
token (and the extensions to load) before it opens ``<app>/ws``.

Bokeh 4's ``server_document()`` host pages and Bokeh 4's own app page ask for it. Under
Bokeh 3 the route is left out rather than answered with an equivalent (:mod:`.routes`; as
``bokeh serve`` 3.x, which has none): BokehJS 3 never asks for it (its embeds load
``autoload.js``, which stays), and the body's ``requires`` and ``assets`` are Bokeh 4's
resolved extension bundles (``bokeh.embed.resources``), which Bokeh 3 cannot compute, so an
"equivalent" would be a second resolver written for a client that does not exist. Under
Bokeh 4 autoload.js is gone likewise. The checks run in Bokeh 4's order
(``bokeh.server.views.embed_json_handler``):

1. the ``Origin``, against the websocket allowlist: a foreign one gets 403 and no CORS
   header at all, before authentication, so a foreign page learns nothing of the login;
2. the login (:class:`.auth.users.AuthRequestHandler`), as for every page;
3. the resource policy the page asks for (``Bokeh-Resource-Mode``,
   ``Bokeh-Resource-Minified``): 409 with Bokeh's reason, before any session is made;
4. the session (:mod:`app.sessions.embed`): 403 for a bad token or id.

Every answer, errors included, says ``Cache-Control: no-store``, ``Pragma: no-cache``,
``X-Content-Type-Options: nosniff`` and ``Vary: Origin`` (the body carries a session token);
an allowed origin gets a credentialed CORS grant for itself, with the request headers it
asked for (or the ones pages send). OPTIONS preflights pass the origin check only: no login,
no session work.
"""
from __future__ import annotations

import json
import logging

from flask import Response, make_response, request
from werkzeug.wrappers import Response as BaseResponse

from ..app.apps import pages
from ..app.config.origins import served_address
from ..app.sessions import embed
from ..app.sessions.errors import HTTPError
from .session_handler import SessionHandler

log = logging.getLogger(__name__)


class EmbedJsonHandler(SessionHandler):
    def _origin(self) -> tuple[str | None, bool]:
        """The request's ``Origin`` (None without one) and whether it may embed the app."""
        origin = request.headers.get("Origin")
        allowed = origin is not None and self.core.origins.allows(
            origin, request.headers.get("Host"), served_address(request.environ))
        return origin, allowed

    def prepare(self) -> BaseResponse | None:
        origin, allowed = self._origin()
        if origin is not None and not allowed:
            log.info("Refusing embed.json for Origin %r; allow it with --allow-websocket-origin or "
                     "BOKEH_ALLOW_WS_ORIGIN", origin)
            raise HTTPError(403, "Origin is not allowed")
        if request.method == "OPTIONS":
            return None
        return super().prepare()

    def dispatch_request(self, **kwargs: object) -> Response:
        response = make_response(super().dispatch_request(**kwargs))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.vary.add("Origin")
        origin, allowed = self._origin()
        if origin is not None and allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", embed.EMBED_HEADERS)
        return response

    def options(self) -> Response:
        return Response("", status=200, content_type="text/plain")

    def get(self) -> Response:
        info = self.request_info()
        prefix = request.script_root + self.route_options["prefix"]
        root_url = prefix or "/"
        policy = embed.resource_policy(pages.resources_for(pages.root_url(prefix)), info, root_url)
        session = embed.embed_session(self.core, self.application_context, info, info.user)
        body = embed.bootstrap(session, policy, root_url)
        return Response(json.dumps(body), content_type="application/json")
