"""FlaskLoginAuth: Bokeh's auth-provider contract on Flask-Login, with logins that end.

Two modes (the views are in :mod:`blueprints.auth.login_handlers`):

* ``FlaskLoginAuth(check_credentials=...)``: standalone. bokeh-flask installs a Flask-Login
  ``LoginManager`` and serves ``<prefix>/login`` and ``<prefix>/logout``. The user id
  Flask-Login keeps in its cookies is ``<login id>:<name>``, and the loader accepts it only
  while the login store (:mod:`app.auth.logins`) holds that login: a cookie saved before a
  logout, or idle past ``login_idle_timeout``, logs nobody in, in any worker. Its cookies
  are ``HttpOnly``, ``SameSite=Lax`` (``cookie_samesite``), ``Secure`` on HTTPS (behind a
  proxy with ``use_xheaders`` too), and scoped to the server's path.
* ``FlaskLoginAuth()``: inside a Flask app that already uses Flask-Login. The host's
  ``LoginManager``, user model and cookie settings stay; bokeh-flask records a login id in
  the host's session at each login (Flask-Login's signals), ends it at logout (and revokes
  a remember-me cookie seen then), and logs out, before any view, a request whose session
  names no live login: the host's own pages refuse a replayed cookie too.

Whichever it is, logging out ends the user's Bokeh sessions in every worker
(:meth:`ServerCore.end_user_sessions`).
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable, Mapping

from flask import Flask, Response, abort, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask.views import View
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    logout_user,
    user_loaded_from_cookie,
    user_logged_in,
    user_logged_out,
)

from ...app.auth import pending_logouts
from ...app.auth.logins import LoginStore, StoreUnavailable, login_store_url, namespace_for, open_store
from ...app.auth.pending_logouts import StoreWithPending
from ...app.auth.providers import AuthError, AuthProvider
from ...app.config.settings import Settings
from ...app.sessions.server import ServerCore

log = logging.getLogger(__name__)

#: Flask session key holding the login id (host-app mode).
LOGIN_ID_KEY = "_bokeh_flask_login"
#: How long a "stay logged in" login lasts without a visit (Flask-Login's default: a year).
REMEMBER_FOR = timedelta(days=14)


class LoginUser(UserMixin):  # type: ignore[misc]  # flask_login has no type information
    """The user of the standalone login page: a name and the login it came with (and, for a
    single sign-on login, what the provider said about the user)."""

    def __init__(self, name: str, login_id: str, claims: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.login_id = login_id
        self.claims: Mapping[str, Any] = claims or {}

    def get_id(self) -> str:
        """What Flask-Login keeps in its cookies: the login id first (it has no ``:``)."""
        return f"{self.login_id}:{self.name}"


class FlaskLoginAuth(AuthProvider):
    """Authentication with Flask-Login (see the module docstring for the two modes).

    ``check_credentials(username, password) -> bool`` turns on the standalone mode and its
    login page; without it the host app's ``LoginManager`` is used. ``login_url`` and
    ``logout_url`` default to ``/login`` and ``/logout`` under the server prefix when
    standalone; with a host app they are the host's own URLs, used as given.
    """

    #: Whether the provider brings its own login page whatever its arguments (single sign-on).
    brings_login_page = False

    def __init__(self, check_credentials: Callable[[str, str], bool] | None = None, *,
                 login_url: str | None = None, logout_url: str | None = None) -> None:
        self.check_credentials = check_credentials
        self.standalone = check_credentials is not None or self.brings_login_page
        self._login_url = login_url or ("/login" if self.standalone else None)
        self._logout_url = logout_url or ("/logout" if self.standalone else None)
        self._cookie_names: tuple[str, ...] = ("session", "remember_token")
        #: live logins, shared by the workers (set by :meth:`init_app`)
        self.store: StoreWithPending | None = None
        super().__init__()

    # -- the contract ---------------------------------------------------------------------

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
        from .login_handlers import LoginView

        return LoginView if self.standalone else None

    @property
    def logout_url(self) -> str | None:
        return self._logout_url

    @property
    def logout_handler(self) -> type | None:
        from .login_handlers import LogoutView

        return LogoutView if self.standalone else None

    def identity(self, user: Any) -> str:
        return user.name if isinstance(user, LoginUser) else str(user.get_id())

    def claims(self, user: Any) -> Mapping[str, Any] | None:
        return user.claims if isinstance(user, LoginUser) else None

    def load_login(self, login_id: str, name: str) -> LoginUser | None:
        """The standalone login a cookie names, while the store holds it."""
        assert self.store is not None
        return LoginUser(name, login_id) if self.store.check(login_id, name) else None

    def logout_target(self, login: LoginUser) -> str | None:
        """Where the browser goes once ``login`` has ended here (None: the login page).
        Called before the login ends, while what it keeps can still be read."""
        return None

    def logged_out_page(self) -> Response | None:
        """The answer to the logout page without a login (None: go to the login page)."""
        return None

    @property
    def login_cookies(self) -> tuple[str, ...]:
        """Flask's session cookie (the login; in a host app, the host's whole session) and
        Flask-Login's remember-me cookie."""
        return self._cookie_names

    def public_logout_url(self, prefix: str) -> str | None:
        if self.standalone:
            return super().public_logout_url(prefix)
        return self._logout_url  # the host serves it, outside our prefix

    def unavailable(self) -> str | None:
        return self.store.ping() if self.store is not None else None

    def _host_login_url(self, request_handler: Any) -> str | None:
        """The host's login page: ``login_url=`` if given, else its ``login_view``."""
        if self._login_url:
            return self._login_url
        from flask import url_for

        view = current_app.login_manager.login_view  # type: ignore[attr-defined]  # set by Flask-Login
        return url_for(view) if view else None

    # -- attaching to the Flask app -------------------------------------------------------

    def init_app(self, app: Flask, core: ServerCore, prefix: str = "") -> None:
        """Attach to ``app``'s Flask-Login (installing one when standalone)."""
        settings = core.settings
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
        elif existing is None:
            raise AuthError("FlaskLoginAuth() without check_credentials uses the Flask app's own "
                            "Flask-Login, but the app has no LoginManager: create "
                            "LoginManager(app) before BokehServer(...), or pass check_credentials=...")
        pending = core.pending_logouts or pending_logouts.for_settings(settings)
        self.store = StoreWithPending(_open_store(settings, app.secret_key), pending)
        pending.flush()  # a host restarted since a logout the store missed: delivered now
        if self.standalone:
            self._install_standalone(app, settings, prefix)
        else:
            self._install_host_hooks(app)
        self._cookie_names = (app.config.get("SESSION_COOKIE_NAME") or "session",
                              app.config.get("REMEMBER_COOKIE_NAME") or "remember_token")

        def end_sessions(sender: Flask, user: Any = None, **extra: Any) -> None:
            if user is not None and user.is_authenticated and not g.get("bokeh_flask_stale_login"):
                core.end_user_sessions(self.identity(user))

        user_logged_out.connect(end_sessions, app, weak=False)

    def _install_standalone(self, app: Flask, settings: Settings, prefix: str) -> None:
        store = self.store
        assert store is not None
        manager = LoginManager(app)

        @manager.user_loader  # type: ignore[untyped-decorator]  # flask_login has no type information
        def load(user_id: str) -> LoginUser | None:
            login_id, sep, name = user_id.partition(":")
            return self.load_login(login_id, name) if sep else None

        path = prefix or "/"
        secure_always = settings.cookie_samesite == "None"  # browsers require it with None
        app.config.update(
            SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE=settings.cookie_samesite,
            SESSION_COOKIE_PATH=path, SESSION_COOKIE_SECURE=secure_always,
            REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE=settings.cookie_samesite,
            REMEMBER_COOKIE_PATH=path, REMEMBER_COOKIE_SECURE=secure_always,
            REMEMBER_COOKIE_DURATION=REMEMBER_FOR,
        )
        app.session_interface = SecureWhenHTTPS()
        remember = app.config.get("REMEMBER_COOKIE_NAME") or "remember_token"
        app.after_request(lambda response: _secure_cookie(response, remember))

    def _install_host_hooks(self, app: Flask) -> None:
        store = self.store
        assert store is not None
        remember_name = app.config.get("REMEMBER_COOKIE_NAME") or "remember_token"
        remember_for = app.config.get("REMEMBER_COOKIE_DURATION") or timedelta(days=365)

        def on_login(sender: Flask, user: Any = None, **extra: Any) -> None:
            session[LOGIN_ID_KEY] = store.start(self.identity(user))

        def on_logout(sender: Flask, user: Any = None, **extra: Any) -> None:
            login_id = session.pop(LOGIN_ID_KEY, None)
            if login_id:
                store.end(login_id)
            saved = request.cookies.get(remember_name)
            if saved:  # a copy of it must not log this user in again
                store.revoke(saved, remember_for.total_seconds())

        def on_cookie_login(sender: Flask, user: Any = None, **extra: Any) -> None:
            saved = request.cookies.get(remember_name, "")
            if store.revoked(saved):
                g.bokeh_flask_stale_login = True
                logout_user()
                return
            session[LOGIN_ID_KEY] = store.start(self.identity(user))

        def check_login() -> None:
            if login_exempt() or not current_user.is_authenticated:
                return
            login_id: str | None = session.get(LOGIN_ID_KEY)
            try:
                live = store.check(login_id, self.identity(current_user)) if login_id else False
            except StoreUnavailable as unavailable:
                if request.path == self._logout_url:
                    return  # logging out needs no check: the login ends once the store is back
                abort(503, description=unavailable.reason)
            if not live:
                g.bokeh_flask_stale_login = True  # not a logout: other logins keep their sessions
                logout_user()

        user_logged_in.connect(on_login, app, weak=False)
        user_logged_out.connect(on_logout, app, weak=False)
        user_loaded_from_cookie.connect(on_cookie_login, app, weak=False)
        app.before_request(check_login)


def session_login() -> LoginUser | None:
    """The standalone login the session cookie names (signed, so genuine), unchecked: a
    logout must end it even while the store cannot say whether it is live."""
    login_id, sep, name = str(session.get("_user_id", "")).partition(":")
    return LoginUser(name, login_id) if sep and login_id else None


def login_exempt() -> bool:
    """Whether the current request's view needs no login (probes: ``login_exempt = True``)."""
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(getattr(view, "view_class", view), "login_exempt", False))


def _open_store(settings: Settings, secret: Any) -> LoginStore:
    """The login store; one that does not answer now (a worker booting during an outage)
    is used all the same, with one warning: it refuses logins (503) until it answers."""
    if isinstance(secret, bytes):
        secret = secret.decode("latin-1")
    try:
        store = open_store(login_store_url(settings), settings.login_idle_timeout, namespace_for(secret),
                           reachable=False)
    except ValueError as exc:
        raise AuthError(f"--login-store: {exc}") from None
    try:
        store.ping()
    except Exception as exc:
        log.warning("the login store cannot be reached (%s): logins are refused until it answers", exc)
    return store


class SecureWhenHTTPS(SecureCookieSessionInterface):
    """Flask's signed-cookie session, ``Secure`` whenever the request came over HTTPS
    (``X-Forwarded-Proto`` counts with ``use_xheaders``: werkzeug's ProxyFix sets the scheme)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or request.is_secure)


def _secure_cookie(response: Response, remember_name: str) -> Response:
    """Flask-Login sets its remember-me cookie from static config: mark it ``Secure`` on an
    HTTPS request, as the session cookie is."""
    if not request.is_secure:
        return response
    headers = response.headers.getlist("Set-Cookie")
    if not any(h.startswith(f"{remember_name}=") and "; Secure" not in h for h in headers):
        return response
    response.headers.remove("Set-Cookie")
    for header in headers:
        if header.startswith(f"{remember_name}=") and "; Secure" not in header:
            header += "; Secure"
        response.headers.add("Set-Cookie", header)
    return response


def _flask_login_user(request_handler: Any) -> Any:
    """get_user for Flask-Login: ``current_user`` when logged in (the Tornado handler is
    not needed, the Flask request context has everything)."""
    return current_user._get_current_object() if current_user.is_authenticated else None
