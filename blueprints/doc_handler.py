"""DocHandler: ``<prefix>/<app>`` and ``<prefix>/<app>/`` serve a new session's page."""
from __future__ import annotations

from flask import Response, request

from ..app.apps import pages
from ..app.apps.load_errors import AppLoadError
from ..app.process import dev_reload
from ..app.sessions.requests import is_loopback
from .session_handler import SessionHandler


class DocHandler(SessionHandler):
    """Create (or join) a session and render its page, BokehJS from our own ``/static``.

    Under ``--dev`` the page reloads itself when its worker restarts on a save, and an app
    that failed to load answers 500 with its error page instead: with the traceback for a
    client on this machine (with ``--use-xheaders``, the proxied client), without for others.
    """

    def get(self) -> Response:
        prefix = request.script_root + self.route_options["prefix"]
        try:
            session = self.get_session()
        except AppLoadError as error:
            if not self.core.settings.dev:
                raise
            html = pages.app_error_page(error, detailed=is_loopback(request.remote_addr or ""))
            return Response(self._dev_page(html, prefix), status=500, content_type="text/html; charset=utf-8")
        resources = pages.resources_for(pages.root_url(prefix))
        html = pages.doc_page(session, resources)
        if self.core.settings.dev:
            html = self._dev_page(html, prefix)
        return Response(html, content_type="text/html; charset=utf-8")

    def _dev_page(self, html: str, prefix: str) -> str:
        return dev_reload.with_reload_script(html, prefix + dev_reload.BOOT_PATH, self.core.boot_id)
