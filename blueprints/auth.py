"""AuthRequestHandler: Bokeh's authentication mixin for Flask views.

``get_current_user`` asks the server's auth provider (with none configured every request
is ``"default_user"``, as Bokeh's NullAuth); ``prepare`` runs before each protected view and
redirects anonymous page requests to the login URL with ``next``, or refuses anything else
with 403. Static files, the favicon and autoload's OPTIONS are not protected.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import redirect, request
from werkzeug.wrappers import Response

from ..app.errors import HTTPError
from ..app.server import ServerCore

#: The user every request has when no auth provider is configured (Bokeh's NullAuth).
DEFAULT_USER = "default_user"


class AuthRequestHandler:
    """Mixin for views that need a user; expects ``self.core``."""

    core: ServerCore

    def get_current_user(self) -> Any:
        provider = getattr(self.core, "auth_provider", None)
        if provider is None:
            return DEFAULT_USER
        return provider.get_user(request)

    def get_login_url(self) -> str | None:
        provider = getattr(self.core, "auth_provider", None)
        if provider is None:
            return None
        return provider.get_login_url(request)

    def prepare(self) -> Response | None:
        """Refuse or redirect a request without a user; None lets the view run."""
        if self.get_current_user():
            return None
        login_url = self.get_login_url()
        if request.method in ("GET", "HEAD") and login_url:
            if "?" not in login_url:
                target = request.full_path.rstrip("?")
                login_url = f"{login_url}?next={quote(target, safe='')}"
            return redirect(login_url)
        raise HTTPError(403, "Forbidden")
