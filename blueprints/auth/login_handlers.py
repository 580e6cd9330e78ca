"""Login and logout pages: the standalone Flask-Login provider's views, and an auth module's
Tornado ``LoginHandler``/``LogoutHandler`` served as Flask views.

The provider itself is :mod:`blueprints.auth.flask_login_auth`. What the pages do against an
attacker: the login form carries a CSRF token and failed logins are throttled so that a
guesser refuses its own address, not the user it guesses at (:mod:`app.auth.throttle`: 429 with
``Retry-After``, counted in the login store, so every worker counts together); ``next`` is
followed only to a path on this site without control characters; logging out takes a POST
with the CSRF token (a GET shows a one-button confirmation, so no other site can log a user
out); both pages refuse to be framed and cached.
"""
from __future__ import annotations

import hmac
import secrets
from typing import Any, Callable
from urllib.parse import urlsplit

import jinja2
from flask import Flask, Response, redirect, request, session
from flask.views import View
from flask_login import current_user, login_user, logout_user
from tornado.web import RequestHandler
from werkzeug.wrappers import Response as BaseResponse

from ...app.apps.pages import TEMPLATES_DIR
from ...app.auth.logins import StoreUnavailable
from ...app.auth.providers import join_prefix
from ...app.auth.throttle import LoginThrottle, Refusal
from ...app.config.settings import Settings
from ...app.sessions.errors import HTTPError
from ...app.sessions.server import ServerCore
from ..views import BokehView, error_response
from .flask_login_auth import FlaskLoginAuth, LoginUser, session_login
from .users import current_identity

#: Flask session key of the login and logout forms' CSRF token.
CSRF_SESSION_KEY = "_bokeh_flask_csrf"
#: Headers of the login and logout pages: never framed (clickjacking), never cached.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Cache-Control": "no-store",
}

_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)


def local_target(target: str | None, default: str) -> str:
    """``next`` only if it is a path on this site: no scheme, no host, no backslash, no
    control character or space (which could split a header); else ``default``."""
    if target and target.startswith("/") and not target.startswith("//"):
        if all(" " < ch != "\\" and ch != "\x7f" for ch in target):
            parts = urlsplit(target)
            if not parts.scheme and not parts.netloc:
                return target
    return default


def csrf_token() -> str:
    token = session.get(CSRF_SESSION_KEY)
    if not token:
        token = session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def _check_csrf(what: str) -> None:
    expected = session.get(CSRF_SESSION_KEY, "")
    sent = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise HTTPError(400, f"Bad Request: the {what} form's CSRF token is missing or invalid; "
                             f"reload the {what} page and try again")


def page(template: str, status: int = 200, **context: Any) -> Response:
    html = _templates.get_template(template).render(**context)
    return Response(html, status=status, content_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def forbidden_page(core: ServerCore, identity: str, app_key: str) -> Response:
    """403 for a logged-in user whom the provider does not allow to use the app: who they
    are, and a logout button (to log in with another account)."""
    action = request.script_root + (core.logout_url or "/")
    return page("forbidden.html", 403, action=action, csrf_token=csrf_token(), user=identity, app=app_key)


class LoginView(BokehView):
    """``<prefix>/login`` of the standalone Flask-Login provider: a form and its POST."""

    methods = ["GET", "POST"]

    @property
    def provider(self) -> FlaskLoginAuth:
        provider = self.core.auth_provider
        assert isinstance(provider, FlaskLoginAuth)
        return provider

    def _form(self, error: str = "", status: int = 200) -> Response:
        return page("login.html", status, action=request.script_root + request.path,
                     csrf_token=csrf_token(), error=error, next=request.values.get("next", ""))

    def get(self) -> Response:
        return self._form()

    def post(self) -> BaseResponse:
        _check_csrf("login")
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        store = self.provider.store
        assert store is not None and self.provider.check_credentials is not None
        throttle = LoginThrottle(store, self.core.settings)
        address = request.remote_addr or "unknown"
        throttle.note_proxy(address, request.headers.get("X-Forwarded-For"))
        attempt = throttle.attempt(username, address)
        if isinstance(attempt, Refusal):
            message = ("Too many failed logins: try again later." if attempt.status == 429
                       else "Logins are unavailable for a moment: try again later.")
            response = self._form(message, status=attempt.status)
            response.headers["Retry-After"] = str(attempt.retry_after)
            return response
        if not username or not self.provider.check_credentials(username, password):
            return self._form("Wrong username or password.", status=401)  # the attempt stays counted
        throttle.succeeded(username, address, attempt)
        session.pop(CSRF_SESSION_KEY, None)  # a fresh token for the next form
        login_user(LoginUser(username, store.start(username)), remember=request.form.get("remember") == "yes")
        home = request.script_root + (self.route_options["prefix"] or "") + "/"
        return redirect(local_target(request.form.get("next"), home))


class LogoutView(BokehView):
    """``<prefix>/logout``: a GET asks, a POST with the CSRF token logs out. The login ends
    in the store (a saved cookie no longer works anywhere; while the store is unreachable,
    on this host at once and everywhere once it is back), the user's sessions end in every
    worker, and the browser goes back to the login page with its cookie cleared."""

    methods = ["GET", "POST"]

    def get(self) -> BaseResponse:
        try:
            name = current_user.name if current_user.is_authenticated else None
        except StoreUnavailable:  # the cookie's login cannot be checked: it may still log out
            named = session_login()
            name = named.name if named is not None else None
        if name is None:
            provider = self.core.auth_provider
            answer = provider.logged_out_page() if isinstance(provider, FlaskLoginAuth) else None
            return answer or redirect(request.script_root + (self.core.login_url or "/"))
        return page("logout.html", action=request.script_root + request.path,
                     csrf_token=csrf_token(), user=name)

    def post(self) -> BaseResponse:
        _check_csrf("logout")
        named = session_login()
        target = None
        if named is not None:
            provider = self.core.auth_provider
            assert isinstance(provider, FlaskLoginAuth) and provider.store is not None
            target = provider.logout_target(named)
            provider.store.end(named.login_id)  # from here on no worker of this host loads it
            logout_user()
            self.core.end_user_sessions(named.name)
        session.pop(CSRF_SESSION_KEY, None)
        return redirect(target or request.script_root + (self.core.login_url or "/"))


class TornadoHandlerView(View):
    """An auth module's Tornado ``LoginHandler``/``LogoutHandler`` served by Flask."""

    methods = list(RequestHandler.SUPPORTED_METHODS)

    def __init__(self, core: ServerCore, handler_class: type[RequestHandler], logout: bool) -> None:
        self.core = core
        self.handler_class = handler_class
        self.logout = logout

    def dispatch_request(self, **kwargs: Any) -> Response:
        self.core.ensure_started()
        try:
            user = current_identity(self.core) if self.logout else None
            result = self.core.tornado.run(self.handler_class, request.environ, request.get_data())
        except HTTPError as error:
            return error_response(error)
        if user is not None:
            self.core.end_user_sessions(user)
        response = Response(result.body, status=f"{result.status} {result.reason}")
        response.headers.clear()
        for name, value in result.headers:
            response.headers.add(name, value)
        return response


def auth_routes(core: ServerCore, prefix: str) -> list[tuple[str, str, Callable[..., Any], list[str]]]:
    """``(path, endpoint, view, methods)`` for the provider's login and logout pages."""
    provider = core.auth_provider
    routes = []
    for url, handler in provider.endpoints:
        path = urlsplit(join_prefix(prefix, url)).path
        kind = "logout" if handler is provider.logout_handler and url == provider.logout_url else "login"
        if issubclass(handler, RequestHandler):
            view = TornadoHandlerView.as_view(kind, core=core, handler_class=handler,
                                              logout=kind == "logout")
            methods = list(TornadoHandlerView.methods)
        else:
            assert issubclass(handler, View)  # the provider's handler_bases, checked at start-up
            view = handler.as_view(kind, core=core, prefix=prefix)
            methods = list(handler.methods or ["GET"])
        routes.append((path, kind, view, methods))
    return routes


def with_cookie_secret(app: Flask, settings: Settings) -> Settings:
    """One secret for both kinds of signed cookie: ``cookie_secret`` signs Flask's session
    when the app has no ``SECRET_KEY``, and the app's key signs Tornado's secure cookies
    when no ``cookie_secret`` is set."""
    if settings.cookie_secret and not app.secret_key:
        app.secret_key = settings.cookie_secret
    elif app.secret_key and not settings.cookie_secret:
        key = app.secret_key
        settings = settings.replace(cookie_secret=key.decode("latin-1") if isinstance(key, bytes) else key)
    return settings


def install_auth(app: Flask, core: ServerCore, prefix: str) -> None:
    """Attach a Flask-Login provider to the Flask app (other providers need nothing here)."""
    provider = core.auth_provider
    if isinstance(provider, FlaskLoginAuth):
        provider.init_app(app, core, prefix)
