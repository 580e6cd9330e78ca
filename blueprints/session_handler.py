"""SessionHandler: find or create the session a page request names (Bokeh's
``bokeh.server.views.session_handler``).

Shared by DocHandler and AutoloadJsHandler: ``bokeh-session-id`` argument or header,
``bokeh-token``, id generation and signing checks all happen in :mod:`app.sessions.tokens`;
this class only binds them to the app the URL names, and times the page for the metrics.
"""
from __future__ import annotations

import time
from typing import Any

from flask import request
from flask.typing import ResponseReturnValue

from ..app.sessions.contexts import ApplicationContext
from ..app.sessions.session import PageSession
from .auth.users import AuthRequestHandler
from .views import BokehView


class SessionHandler(AuthRequestHandler, BokehView):
    """Base for views that serve a session of the app ``options['app_key']``."""

    @property
    def application_context(self) -> ApplicationContext:
        return self.core.application_context(self.route_options["app_key"])

    def get_session(self) -> PageSession:
        return self.core.session_for_request(self.application_context, self.request_info())

    def dispatch_request(self, **kwargs: Any) -> ResponseReturnValue:
        """The view, timed: a page served (200) counts in ``bokeh_flask_page_seconds``, a
        server error in ``bokeh_flask_errors_total{kind="page"}``."""
        started = time.perf_counter()
        response = super().dispatch_request(**kwargs)
        if request.method == "GET":
            status = getattr(response, "status_code", 200)
            metrics = self.application_context.metrics
            if status == 200:
                metrics.page_served(time.perf_counter() - started)
            elif status >= 500:
                metrics.error("page")
        return response
