"""DocHandler: ``<prefix>/<app>`` and ``<prefix>/<app>/`` serve a new session's page."""
from __future__ import annotations

from flask import Response, request

from ..app import pages

from .session import SessionHandler


class DocHandler(SessionHandler):
    """Create (or join) a session and render its page, BokehJS from our own ``/static``."""

    def get(self) -> Response:
        session = self.get_session()
        resources = pages.resources_for(pages.root_url(request.script_root + self.route_options["prefix"]))
        html = pages.doc_page(session, resources)
        return Response(html, content_type="text/html; charset=utf-8")
