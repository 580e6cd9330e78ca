"""Bokeh's auth-provider contract (``bokeh.server.auth_provider``): what a provider offers and which
combinations are valid, plus the two providers that need no web framework.

A provider names up to seven things: ``get_user`` or ``get_user_async`` (who is asking),
``login_url`` or ``get_login_url`` (where anonymous visitors go), ``login_handler``,
``logout_url`` and ``logout_handler``. :class:`AuthProvider` validates the combination
when it is built, with Bokeh's rules and messages, so a bad configuration stops the server
at start-up instead of failing on the first request.

``get_user`` and friends receive a Tornado ``RequestHandler`` for the current request (see
:mod:`app.auth.tornado_bridge`), exactly as under ``bokeh serve``, so existing auth modules run
unchanged. The user they return becomes an *identity string* (:meth:`AuthProvider.identity`)
that travels in session tokens: a session belongs to the user who created it.

Nothing here touches a request or a socket; loading an auth module runs its code once.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import uuid
from types import MappingProxyType, ModuleType
from typing import Any, Callable, Mapping

from ..config.settings import Settings, SettingsError
from ..sessions.requests import RequestInfo

#: What a request has as its user when no provider is configured (Bokeh's NullAuth).
DEFAULT_USER = "default_user"
#: The token-payload key that names the session's owner (only when auth is on).
TOKEN_USER_KEY = "bokeh_user"


class AuthError(SettingsError):
    """An auth provider that cannot work; raised at start-up with a one-line reason."""


def probably_relative_url(url: str) -> bool:
    """Bokeh's test for a relative URL: not ``http://``, ``https://`` or ``//``."""
    return not url.startswith(("http://", "https://", "//"))


def join_prefix(prefix: str, url: str) -> str:
    """``url`` under the server prefix; a missing leading slash is added, so ``login`` and
    ``/login`` both mean ``<prefix>/login`` (Bokeh would register ``<prefix>login`` but
    redirect to ``<prefix>/login``)."""
    return prefix + "/" + url.lstrip("/")


class AuthProvider:
    """Base class of auth providers; subclasses override the properties they offer.

    Every property defaults to None. ``handler_bases`` names the classes ``login_handler``
    and ``logout_handler`` must derive from: Tornado's ``RequestHandler`` here (what
    auth modules define); the Flask-Login provider serves Flask views instead.
    """

    def __init__(self) -> None:
        self._validate()

    # -- the contract (Bokeh's AuthProvider properties) ---------------------------------

    @property
    def get_user(self) -> Callable[[Any], Any] | None:
        return None

    @property
    def get_user_async(self) -> Callable[[Any], Any] | None:
        return None

    @property
    def login_url(self) -> str | None:
        return None

    @property
    def get_login_url(self) -> Callable[[Any], str | None] | None:
        return None

    @property
    def login_handler(self) -> type | None:
        return None

    @property
    def logout_url(self) -> str | None:
        return None

    @property
    def logout_handler(self) -> type | None:
        return None

    @property
    def endpoints(self) -> list[tuple[str, type]]:
        """``(url, handler)`` for each handler the server must serve (url unprefixed)."""
        endpoints: list[tuple[str, type]] = []
        if self.login_handler is not None and self.login_url:
            endpoints.append((self.login_url, self.login_handler))
        if self.logout_handler is not None and self.logout_url:
            endpoints.append((self.logout_url, self.logout_handler))
        return endpoints

    # -- bokeh-flask's additions --------------------------------------------------------

    @property
    def handler_bases(self) -> tuple[type, ...]:
        from tornado.web import RequestHandler  # only providers with handlers need Tornado

        return (RequestHandler,)

    @property
    def login_cookies(self) -> tuple[str, ...]:
        """Cookies that carry the login, never written into session tokens. Cookies an auth
        module's ``get_user`` reads are found per request; these are declared up front."""
        return ()

    def unavailable(self) -> str | None:
        """Why the provider cannot check logins now (``/readyz`` answers 503 with it)."""
        return None

    @property
    def enabled(self) -> bool:
        """True when requests need a user (NullAuth: False)."""
        return self.get_user is not None or self.get_user_async is not None

    def claims(self, user: Any) -> Mapping[str, Any] | None:
        """What the login says about ``user`` beyond its identity (single sign-on claims)."""
        return None

    def authorize(self, user: Any, app_key: str) -> bool:
        """Whether the logged-in ``user`` may use the app at ``app_key`` (all may by default)."""
        return True

    def identity(self, user: Any) -> str:
        """The string that names ``user`` in tokens and ``session_context.user``.

        It must be the same for every request of one user: the websocket's user is
        compared with the user whose page request minted the token.
        """
        if isinstance(user, bytes):  # get_signed_cookie returns bytes
            return user.decode("utf-8", "replace")
        return str(user)

    def public_login_url(self, prefix: str) -> str | None:
        """The login URL to redirect to when ``get_login_url`` is not given."""
        return join_prefix(prefix, self.login_url) if self.login_url else None

    def public_logout_url(self, prefix: str) -> str | None:
        """``session_context.logout_url``: Bokeh joins the logout URL under the prefix."""
        return join_prefix(prefix, self.logout_url) if self.logout_url else None

    # -- validation (Bokeh's rules for a provider's properties) ---------------------------

    def _validate(self) -> None:
        if self.get_user and self.get_user_async:
            raise AuthError("Only one of get_user or get_user_async should be supplied")
        if (self.get_user or self.get_user_async) and not (self.login_url or self.get_login_url):
            raise AuthError("When user authentication is enabled, one of login_url or "
                            "get_login_url must be supplied")
        if self.login_url and self.get_login_url:
            raise AuthError("At most one of login_url or get_login_url should be supplied")
        if self.login_handler and self.get_login_url:
            raise AuthError("LoginHandler cannot be used with a get_login_url() function")
        for label, handler in (("LoginHandler", self.login_handler), ("LogoutHandler", self.logout_handler)):
            if handler is not None and not (isinstance(handler, type) and issubclass(handler, self.handler_bases)):
                bases = " or ".join(f"{b.__module__}.{b.__qualname__}" for b in self.handler_bases)
                raise AuthError(f"{label} must be a subclass of {bases}")
        if self.login_url and not probably_relative_url(self.login_url):
            raise AuthError("login_url must be a relative URL (use get_login_url for an external "
                            f"login page), got {self.login_url!r}")
        if self.logout_url and not probably_relative_url(self.logout_url):
            raise AuthError(f"logout_url must be a relative URL, got {self.logout_url!r}")
        if self.login_handler and not self.login_url:
            raise AuthError("LoginHandler needs a login_url to be served at")
        if self.logout_handler and not self.logout_url:
            raise AuthError("LogoutHandler needs a logout_url to be served at")


class NullAuth(AuthProvider):
    """No authentication: every request is ``"default_user"``."""


class AuthModule(AuthProvider):
    """A provider read from a Python file, as ``bokeh serve --auth-module`` reads it:
    module-level ``get_user``/``get_user_async``, ``login_url``/``get_login_url``,
    ``logout_url``, and Tornado ``LoginHandler``/``LogoutHandler`` classes."""

    def __init__(self, module_path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(module_path)
        self.module = load_auth_module(self.path)
        try:
            super().__init__()
        except AuthError as exc:
            raise AuthError(f"auth module {self.path}: {exc}") from None

    def _attr(self, name: str) -> Any:
        return getattr(self.module, name, None)

    @property
    def get_user(self) -> Callable[[Any], Any] | None:
        value: Callable[[Any], Any] | None = self._attr("get_user")
        return value

    @property
    def get_user_async(self) -> Callable[[Any], Any] | None:
        value: Callable[[Any], Any] | None = self._attr("get_user_async")
        return value

    @property
    def login_url(self) -> str | None:
        value: str | None = self._attr("login_url")
        return value

    @property
    def get_login_url(self) -> Callable[[Any], str | None] | None:
        value: Callable[[Any], str | None] | None = self._attr("get_login_url")
        return value

    @property
    def login_handler(self) -> type | None:
        value: type | None = self._attr("LoginHandler")
        return value

    @property
    def logout_url(self) -> str | None:
        value: str | None = self._attr("logout_url")
        return value

    @property
    def logout_handler(self) -> type | None:
        value: type | None = self._attr("LogoutHandler")
        return value

    @property
    def login_cookies(self) -> tuple[str, ...]:
        """A module may name its login cookies (``login_cookies = ["user"]``); the ones its
        ``get_user`` reads are kept out of tokens anyway. Tornado's XSRF cookie always is."""
        return ("_xsrf", *(self._attr("login_cookies") or ()))


def load_auth_module(path: str) -> ModuleType:
    """Run the file at ``path`` as a fresh module; any failure is one clear AuthError."""
    if not os.path.isfile(path):
        raise AuthError(f"auth module: no such file: {path}")
    name = "bokeh_flask_auth_" + uuid.uuid4().hex
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError("not a Python source file")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:  # the module's own code failed: say so in one line
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise AuthError(f"auth module {path} failed to load: {type(exc).__name__}: {detail}") from None
    return module


def provider_from(auth: AuthProvider | str | os.PathLike[str] | None, settings: Settings) -> AuthProvider:
    """The provider for a server: ``auth`` (a provider or an auth-module path), else the
    ``auth_module`` setting, else NullAuth."""
    if auth is not None and settings.auth_module:
        raise AuthError("both auth=... and the auth_module setting (--auth-module / "
                        "BOKEH_AUTH_MODULE) are given; use one")
    if isinstance(auth, AuthProvider):
        return auth
    path = auth if auth is not None else settings.auth_module
    if path is None:
        return NullAuth()
    module = AuthModule(path)
    check_cookie_secret(module, settings.cookie_secret)
    return module


def check_cookie_secret(module: AuthModule, cookie_secret: str | None) -> None:
    """An auth module whose code signs or reads Tornado's signed cookies (``*_signed_cookie``,
    formerly ``*_secure_cookie``) cannot work without a cookie secret: refused at start,
    where it would otherwise serve and answer its login POST with 500."""
    if cookie_secret:
        return
    with open(module.path, encoding="utf-8", errors="replace") as file:
        source = file.read()
    if "signed_cookie" in source or "secure_cookie" in source:
        raise AuthError(f"auth module {module.path} uses Tornado's signed cookies but no cookie secret "
                        "is set: give --cookie-secret-file PATH (or BOKEH_COOKIE_SECRET, or the Flask "
                        "app's SECRET_KEY)")


@dataclasses.dataclass
class AuthenticatedRequest(RequestInfo):
    """A request plus the identity its auth provider gave it (None without auth), and the
    names of the cookies that carry the login (kept out of session tokens)."""

    user: str | None = None
    login_cookies: frozenset[str] = frozenset()
    #: what the login says about the user (a single sign-on login's claims), server side only
    claims: Mapping[str, Any] | None = None


def request_user(request: RequestInfo | None) -> str | None:
    """The identity attached to ``request`` by the web layer, if any."""
    return request.user if isinstance(request, AuthenticatedRequest) else None


def request_claims(request: RequestInfo | None) -> Mapping[str, Any]:
    """The claims of the request's login (empty without one, or with a password login)."""
    claims = request.claims if isinstance(request, AuthenticatedRequest) else None
    return MappingProxyType(dict(claims or {}))
