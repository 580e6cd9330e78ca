"""SessionHandler: find or create the session a page request names (contract 2.1).

Shared by DocHandler and AutoloadJsHandler: ``bokeh-session-id`` argument or header,
``bokeh-token``, id generation and signing checks all happen in :mod:`app.tokens`;
this class only binds them to the app the URL names.
"""
from __future__ import annotations

from ..app.contexts import ApplicationContext
from ..app.session import ServerSession

from .auth import AuthRequestHandler
from .views import BokehView


class SessionHandler(AuthRequestHandler, BokehView):
    """Base for views that serve a session of the app ``options['app_key']``."""

    @property
    def application_context(self) -> ApplicationContext:
        return self.core.application_context(self.route_options["app_key"])

    def get_session(self) -> ServerSession:
        return self.core.session_for_request(self.application_context, self.request_info())
