"""AuthRequestHandler: Bokeh's authentication mixin for Flask views.

``get_current_user`` asks the server's auth provider (:mod:`app.auth.providers`; with none configured
every request is ``"default_user"``, as Bokeh's NullAuth). The provider's functions get a
Tornado ``RequestHandler`` for the current request (:mod:`app.auth.tornado_bridge`), as under
``bokeh serve``. ``prepare`` runs before each protected view (doc, autoload, metadata,
index, and the websocket handshake) and redirects anonymous page requests to the login URL
with ``next``, or refuses anything else with 403. Static files, the favicon and autoload's
OPTIONS are not protected.

The user's identity string rides on the view's :class:`RequestInfo` into the core, which
writes it into the session token and onto ``session_context.user``.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping
from urllib.parse import urlencode, urlsplit

from flask import redirect, request
from werkzeug.wrappers import Response

from ...app.auth.providers import DEFAULT_USER, AuthenticatedRequest
from ...app.runtime.asyncio_loop import resolve
from ...app.sessions.errors import HTTPError
from ...app.sessions.server import ServerCore

log = logging.getLogger(__name__)

_UNSET = object()
#: WSGI environ key: names of the cookies the provider read to find the user.
LOGIN_COOKIES_KEY = "bokeh_flask.login_cookies"


def login_cookies(core: ServerCore) -> frozenset[str]:
    """The current request's login cookies: the provider's, and those its get_user read."""
    read: set[str] = request.environ.get(LOGIN_COOKIES_KEY, set())
    return frozenset(core.auth_provider.login_cookies) | read


def current_user(core: ServerCore) -> Any:
    """The provider's user for the current Flask request (None: anonymous).

    A provider function that raises is a server error: logged, answered 500 without
    details (they may name credentials).
    """
    provider = core.auth_provider
    lookup = provider.get_user_async or provider.get_user
    if lookup is None:
        return DEFAULT_USER
    handler = core.tornado.request_handler(request.environ)
    try:
        return resolve(lookup(handler))
    except HTTPError:
        raise
    except Exception:
        log.exception("the auth provider's get_user failed")
        raise HTTPError(500, "Internal Server Error: authentication failed (see the server log)") from None
    finally:
        # the cookies that identified the user carry the login: kept out of tokens
        request.environ.setdefault(LOGIN_COOKIES_KEY, set()).update(handler.cookies_read)


def current_identity(core: ServerCore) -> str | None:
    """The current user's identity string, or None when anonymous or auth is off."""
    if not core.auth_provider.enabled:
        return None
    user = current_user(core)
    return core.auth_provider.identity(user) if user else None


def require_user(core: ServerCore, app_key: str | None = None) -> str | None:
    """The login's identity for a request that needs one (None: authentication is off);
    :class:`HTTPError` 403 without a login (a websocket cannot follow a redirect), or for
    a user the provider does not allow to use the app at ``app_key``."""
    provider = core.auth_provider
    if not provider.enabled:
        return None
    user = current_user(core)
    if not user:
        raise HTTPError(403, "Forbidden: no authenticated user")
    identity = provider.identity(user)
    if app_key is not None and not provider.authorize(user, app_key):
        log.warning("%s may not use the app %s: refused", identity, app_key)
        raise HTTPError(403, f"Forbidden: {identity} may not use this app")
    return identity


def request_claims(core: ServerCore) -> Mapping[str, Any] | None:
    """The current login's claims (single sign-on), for the core's session context."""
    user = current_user(core) if core.auth_provider.enabled else None
    return core.auth_provider.claims(user) if user else None


class AuthRequestHandler:
    """Mixin for views that need a user; expects ``self.core``."""

    core: ServerCore

    @property
    def current_user(self) -> Any:
        """The user, looked up once per view instance (as Tornado caches it)."""
        cached = self.__dict__.get("_current_user", _UNSET)
        if cached is _UNSET:
            cached = self.__dict__["_current_user"] = self.get_current_user()
        return cached

    @property
    def user_identity(self) -> str | None:
        """What tokens and ``session_context.user`` carry; None when auth is off."""
        provider = self.core.auth_provider
        if not provider.enabled or not self.current_user:
            return None
        return provider.identity(self.current_user)

    def get_current_user(self) -> Any:
        return current_user(self.core)

    def get_login_url(self) -> str | None:
        provider = self.core.auth_provider
        if provider.get_login_url is not None:
            return provider.get_login_url(self.core.tornado.request_handler(request.environ))
        if self.core.login_url is None:
            return None
        return request.script_root + self.core.login_url

    def request_info(self) -> AuthenticatedRequest:
        """The request as the core sees it, carrying the user's identity."""
        info = AuthenticatedRequest.from_environ(request.environ)
        info.user = self.user_identity
        info.login_cookies = login_cookies(self.core)
        info.claims = request_claims(self.core)
        return info

    def prepare(self) -> Response | None:
        """Refuse or redirect a request without a user, or whose user may not use the app
        (403 with a page naming the user and offering to log out); None lets the view run."""
        user = self.current_user
        if user:
            app_key = getattr(self, "route_options", {}).get("app_key")
            if app_key is None or self.core.auth_provider.authorize(user, app_key):
                return None
            from .login_handlers import forbidden_page

            identity = self.core.auth_provider.identity(user)
            log.warning("%s may not use the app %s: refused", identity, app_key)
            return forbidden_page(self.core, identity, app_key)
        login_url = self.get_login_url()
        if request.method in ("GET", "HEAD") and login_url:
            if "?" not in login_url:
                info = AuthenticatedRequest.from_environ(request.environ)
                target = info.full_url if urlsplit(login_url).scheme else info.uri
                login_url += "?" + urlencode({"next": target})
            return redirect(login_url)
        raise HTTPError(403, "Forbidden: login required")
