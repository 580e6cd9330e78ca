"""Login and logout: the Flask-Login provider, its views, and Tornado handlers as views.

Three ways to authenticate, one contract (:mod:`app.auth`):

* ``FlaskLoginAuth(check_credentials=...)``: standalone. bokeh-flask installs a Flask-Login
  ``LoginManager``, serves ``<prefix>/login`` (``templates/login.html``, CSRF-protected)
  and ``<prefix>/logout``, and asks ``check_credentials(username, password)``.
* ``FlaskLoginAuth()``: inside a Flask app that already uses Flask-Login. The host's
  ``LoginManager`` and ``current_user`` decide; anonymous visitors go to the host's
  ``login_view`` (or ``login_url=``); the host's own logout view ends the user's sessions
  through Flask-Login's ``user_logged_out`` signal.
* An auth module (``--auth-module``, ``BOKEH_AUTH_MODULE`` or ``auth="path.py"``): its
  Tornado ``LoginHandler``/``LogoutHandler`` run through :class:`TornadoHandlerView`.

Whichever it is, logging out ends the user's sessions in this worker.
"""
from __future__ import annotations

import hmac
import secrets
from typing import Any, Callable
from urllib.parse import urlsplit

import jinja2
from flask import Flask, Response, redirect, request, session
from flask.views import View
from flask_login import (LoginManager, UserMixin, current_user, login_user, logout_user,
                         user_logged_out)
from tornado.web import RequestHandler

from ..app.auth import AuthError, AuthProvider, join_prefix
from ..app.errors import HTTPError
from ..app.pages import TEMPLATES_DIR
from ..app.server import ServerCore
from ..app.settings import Settings

from .auth import current_identity
from .views import BokehView, error_response

#: Flask session key of the login form's CSRF token.
CSRF_SESSION_KEY = "_bokeh_flask_csrf"

_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)


class LoginUser(UserMixin):
    """The user of the standalone login page: known by name only."""

    def __init__(self, name: str) -> None:
        self.id = name


class FlaskLoginAuth(AuthProvider):
    """Authentication with Flask-Login (see the module docstring for the two modes).

    ``check_credentials(username, password) -> bool`` turns on the standalone mode and its
    login page; without it the host app's ``LoginManager`` is used. ``login_url`` and
    ``logout_url`` default to ``/login`` and ``/logout`` under the server prefix when
    standalone; with a host app they are the host's own URLs, used as given.
    """

    def __init__(self, check_credentials: Callable[[str, str], bool] | None = None, *,
                 login_url: str | None = None, logout_url: str | None = None) -> None:
        self.check_credentials = check_credentials
        self.standalone = check_credentials is not None
        self._login_url = login_url or ("/login" if self.standalone else None)
        self._logout_url = logout_url or ("/logout" if self.standalone else None)
        self._cookie_names: tuple[str, ...] = ("session", "remember_token")
        super().__init__()

    @property
    def handler_bases(self) -> tuple[type, ...]:
        return (View,)

    @property
    def get_user(self) -> Callable[[Any], Any]:
        return _flask_login_user

    @property
    def login_url(self) -> str | None:
        return self._login_url if self.standalone else None

    @property
    def get_login_url(self) -> Callable[[Any], str | None] | None:
        return None if self.standalone else self._host_login_url

    @property
    def login_handler(self) -> type | None:
        return LoginView if self.standalone else None

    @property
    def logout_url(self) -> str | None:
        return self._logout_url

    @property
    def logout_handler(self) -> type | None:
        return LogoutView if self.standalone else None

    def identity(self, user: Any) -> str:
        return str(user.get_id())

    @property
    def login_cookies(self) -> tuple[str, ...]:
        """Flask's session cookie (the login; in a host app, the host's whole session) and
        Flask-Login's remember-me cookie."""
        return self._cookie_names

    def public_logout_url(self, prefix: str) -> str | None:
        if self.standalone:
            return super().public_logout_url(prefix)
        return self._logout_url  # the host serves it, outside our prefix

    def _host_login_url(self, request_handler: Any) -> str | None:
        """The host's login page: ``login_url=`` if given, else its ``login_view``."""
        if self._login_url:
            return self._login_url
        from flask import current_app, url_for

        view = current_app.login_manager.login_view  # type: ignore[attr-defined]
        return url_for(view) if view else None

    def init_app(self, app: Flask, core: ServerCore) -> None:
        """Attach to ``app``'s Flask-Login (installing one when standalone)."""
        self._cookie_names = (app.config.get("SESSION_COOKIE_NAME") or "session",
                              app.config.get("REMEMBER_COOKIE_NAME") or "remember_token")
        existing = getattr(app, "login_manager", None)
        if self.standalone:
            if existing is not None:
                raise AuthError("FlaskLoginAuth(check_credentials=...) brings its own login page "
                                "and LoginManager, but this Flask app already has a LoginManager: "
                                "use FlaskLoginAuth() to rely on the app's own login instead")
            if not app.secret_key:
                raise AuthError("FlaskLoginAuth keeps the login in Flask's signed session cookie: "
                                "set the Flask app's SECRET_KEY or cookie_secret= "
                                "(--cookie-secret / BOKEH_COOKIE_SECRET)")
            manager = LoginManager(app)
            manager.user_loader(LoginUser)
        elif existing is None:
            raise AuthError("FlaskLoginAuth() without check_credentials uses the Flask app's own "
                            "Flask-Login, but the app has no LoginManager: create "
                            "LoginManager(app) before BokehServer(...), or pass check_credentials=...")

        def end_sessions(sender: Flask, user: Any = None, **extra: Any) -> None:
            if user is not None and user.is_authenticated:
                core.end_user_sessions(self.identity(user))

        user_logged_out.connect(end_sessions, app, weak=False)


def _flask_login_user(request_handler: Any) -> Any:
    """get_user for Flask-Login: ``current_user`` when logged in (the Tornado handler is
    not needed, the Flask request context has everything)."""
    return current_user._get_current_object() if current_user.is_authenticated else None


def _local_target(target: str | None, default: str) -> str:
    """``next`` only if it stays on this site (no scheme, no host): no open redirects."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return default


class LoginView(BokehView):
    """``<prefix>/login`` of the standalone Flask-Login provider: a form and its POST."""

    methods = ["GET", "POST"]

    @property
    def provider(self) -> FlaskLoginAuth:
        provider = self.core.auth_provider
        assert isinstance(provider, FlaskLoginAuth)
        return provider

    def _form(self, error: str = "", status: int = 200) -> Response:
        token = session.get(CSRF_SESSION_KEY)
        if not token:
            token = session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
        html = _templates.get_template("login.html").render(
            action=request.script_root + request.path, csrf_token=token, error=error,
            next=request.values.get("next", ""))
        return Response(html, status=status, content_type="text/html; charset=utf-8")

    def get(self) -> Response:
        return self._form()

    def post(self) -> Response:
        expected = session.get(CSRF_SESSION_KEY, "")
        sent = request.form.get("csrf_token", "")
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise HTTPError(400, "Bad Request: the login form's CSRF token is missing or invalid; "
                                 "reload the login page and try again")
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        check = self.provider.check_credentials
        assert check is not None
        if not username or not check(username, password):
            return self._form("Wrong username or password.", status=401)
        session.pop(CSRF_SESSION_KEY, None)  # a fresh token for the next form
        login_user(LoginUser(username))
        home = request.script_root + (self.route_options["prefix"] or "") + "/"
        return redirect(_local_target(request.form.get("next"), home))


class LogoutView(BokehView):
    """``<prefix>/logout``: forget the login (Flask-Login's signal ends the sessions) and
    go back to the login page."""

    methods = ["GET", "POST"]

    def get(self) -> Response:
        logout_user()
        login_url = self.core.login_url
        return redirect(request.script_root + (login_url or "/"))

    def post(self) -> Response:
        return self.get()


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
    """Publish the login/logout URLs on the core and attach a Flask-Login provider."""
    provider = core.auth_provider
    core.login_url = provider.public_login_url(prefix)
    core.logout_url = provider.public_logout_url(prefix)
    if isinstance(provider, FlaskLoginAuth):
        provider.init_app(app, core)
