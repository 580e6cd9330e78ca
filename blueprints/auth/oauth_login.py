"""OAuthLogin: single sign-on through Authlib's Flask client, feeding the standalone
Flask-Login machinery of :class:`FlaskLoginAuth`.

A login through the provider ends as a password login does: the user's identity (the
``user_claim``: email by default, GitHub's login) gets a login id in the login store, and
Flask-Login's cookie names it, so logout, logout on every worker and host, the idle
timeout and the re-attach rules are the same code. What the provider said (claims, the
tokens) is attached to that login in the store, sealed (:class:`app.auth.oauth_config.Sealer`):
no cookie or session token carries it; apps read the claims as ``session_context.claims``.

The login follows the provider's: once its access token expires, a refresh token (when the
provider gave one) renews it, on the first request after; without one, or when the
provider refuses, the login ends and the next page goes through the provider again (the
user's Bokeh sessions stay: open tabs reconnect once logged in). Logging out ends the login
here, then at the provider's ``end_session_endpoint`` where it has one.

Who may use which app: :class:`AccessRule` for every app (``allow``), per app key
(``apps``), and ``authorize(identity, claims, app_key) -> bool`` for any other rule; a
logged-in user who is not allowed gets 403 with a page naming them and a logout button.
The views (login, callback, refusals) are in :mod:`.oauth_views`.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlencode

from flask import Flask, Response, request

from ...app.auth.access import AccessRule
from ...app.auth.oauth_config import ProviderSpec, Sealer, extra_params, rule_for, settings_spec, spec_for
from ...app.config.settings import Settings
from ...app.sessions.server import ServerCore
from .flask_login_auth import FlaskLoginAuth, LoginUser

if TYPE_CHECKING:
    from authlib.integrations.flask_client import FlaskOAuth2App

log = logging.getLogger(__name__)

#: Seconds before the access token's expiry at which it is renewed (clocks differ a little).
REFRESH_MARGIN = 30.0
#: Seconds a request to the provider may take.
PROVIDER_TIMEOUT = 10.0
#: Authlib's name for our client (its state keys in Flask's session carry it).
CLIENT_NAME = "bokeh_flask"

#: ``authorize(identity, claims, app_key)``: a host app's own rule, after the allow-lists.
Authorize = Callable[[str, Mapping[str, Any], str], bool]


class OAuthLogin(FlaskLoginAuth):
    """Log in with an OpenID Connect provider (``provider="oidc"``, ``issuer=...``) or GitHub.

    ``allow`` applies to every app and ``apps`` (app key -> rule) replaces it for those
    apps; ``authorize`` is asked last, for a user the rules allow.
    """

    brings_login_page = True

    def __init__(self, provider: str = "oidc", *, client_id: str, client_secret: str, issuer: str | None = None,
                 scope: tuple[str, ...] = (), redirect_uri: str | None = None,
                 extra_params: Mapping[str, str] | None = None, user_claim: str | None = None,
                 allow: AccessRule | None = None, apps: Mapping[str, AccessRule] | None = None,
                 authorize: Authorize | None = None) -> None:
        self.spec: ProviderSpec = spec_for(provider, issuer, tuple(scope), user_claim)
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.extra_params = dict(extra_params or {})
        self.allow = allow or AccessRule()
        self.app_rules = dict(apps or {})
        self.authorize_hook = authorize
        self.client: FlaskOAuth2App | None = None
        self.sealer: Sealer | None = None
        self.prefix = ""
        super().__init__()

    def __repr__(self) -> str:  # never the secret
        return f"OAuthLogin({self.spec.kind!r}, issuer={self.spec.issuer!r}, client_id={self.client_id!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> OAuthLogin:
        """The provider ``--oauth-*`` settings describe (``oauth_provider`` is set)."""
        spec = settings_spec(settings)
        assert settings.oauth_key and settings.oauth_secret  # checked with the settings
        return cls(spec.kind, client_id=settings.oauth_key, client_secret=settings.oauth_secret,
                   issuer=settings.oauth_issuer, scope=settings.oauth_scope,
                   redirect_uri=settings.oauth_redirect_uri, extra_params=extra_params(settings),
                   user_claim=settings.oauth_user_claim, allow=rule_for(settings))

    # -- the contract -------------------------------------------------------------------

    @property
    def login_handler(self) -> type | None:
        from .oauth_views import OAuthLoginView

        return OAuthLoginView

    def authorize(self, user: Any, app_key: str) -> bool:
        if not isinstance(user, LoginUser):
            return False
        rule = self.app_rules.get(app_key, self.allow)
        if not rule.allows(user.name, user.claims):
            return False
        return self.authorize_hook is None or bool(self.authorize_hook(user.name, user.claims, app_key))

    # -- attaching ----------------------------------------------------------------------

    def init_app(self, app: Flask, core: ServerCore, prefix: str = "") -> None:
        from authlib.integrations.flask_client import OAuth

        super().init_app(app, core, prefix)
        self.prefix = prefix
        # Authlib logs the PKCE verifier at debug level: its lines stay at info or above
        authlib_log = logging.getLogger("authlib")
        authlib_log.setLevel(max(logging.INFO, authlib_log.getEffectiveLevel()))
        self.sealer = Sealer(app.secret_key or "")
        client_kwargs = {"scope": " ".join(self.spec.scope), "default_timeout": PROVIDER_TIMEOUT}
        endpoints: dict[str, Any]
        if self.spec.kind == "oidc":
            client_kwargs["code_challenge_method"] = "S256"
            endpoints = {"server_metadata_url": self.spec.metadata_url}
        else:
            endpoints = {"authorize_url": self.spec.authorize_url, "access_token_url": self.spec.token_url,
                         "api_base_url": f"{self.spec.api_url}/"}
        registry = OAuth()  # ours alone: a host app's own Authlib registry stays as it is,
        registry.app = app  # so no init_app (it would take app.extensions' Authlib slot)
        self.client = registry.register(CLIENT_NAME, client_id=self.client_id, client_secret=self._client_secret,
                                        client_kwargs=client_kwargs, **endpoints)

    # -- the login's data ---------------------------------------------------------------

    def keep(self, login_id: str, data: Mapping[str, Any]) -> None:
        assert self.store is not None and self.sealer is not None
        self.store.attach(login_id, self.sealer.seal(data))

    def kept(self, login_id: str) -> dict[str, Any] | None:
        assert self.store is not None and self.sealer is not None
        text = self.store.attached(login_id)
        return self.sealer.open(text) if text else None

    def load_login(self, login_id: str, name: str) -> LoginUser | None:
        """A live login with its data; an expired access token is renewed here, and a login
        that cannot be renewed ends (the user logs in again; their sessions stay)."""
        assert self.store is not None
        if not self.store.check(login_id, name):
            return None
        data = self.kept(login_id)
        if data is not None and _expired(data):
            data = self._refresh(login_id, data)
        if data is None:
            self.store.end(login_id)  # not a logout: the user's sessions stay
            return None
        return LoginUser(name, login_id, data.get("claims") or {})

    def _refresh(self, login_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        refresh_token = data.get("refresh_token")
        if not refresh_token:
            log.info("the login of %s ended with its access token (the provider gave no refresh token)",
                     _claim(data))
            return None
        assert self.client is not None
        try:
            token = self.client.fetch_access_token(grant_type="refresh_token", refresh_token=refresh_token)
        except Exception as exc:  # the provider refused, or cannot be reached: log in again
            again = self.kept(login_id)  # another request of this login may have renewed it meanwhile
            if again is not None and not _expired(again):
                return again
            log.warning("the login of %s ended: the provider refused to renew it (%s)", _claim(data),
                        _describe(exc))
            return None
        renewed = {**data, **token_times(token)}
        renewed["refresh_token"] = token.get("refresh_token") or refresh_token
        self.keep(login_id, renewed)
        log.info("renewed the login of %s at the provider", _claim(data))
        return renewed

    # -- logging out --------------------------------------------------------------------

    def logout_target(self, login: LoginUser) -> str | None:
        """The provider's end-session endpoint (RP-initiated logout), back to our logout page."""
        if self.client is None or self.spec.kind != "oidc":
            return None
        data = self.kept(login.login_id) or {}
        try:
            endpoint = self.client.load_server_metadata().get("end_session_endpoint")
        except Exception as exc:
            log.warning("logged out here only: the provider's metadata cannot be read (%s)", _describe(exc))
            return None
        if not endpoint:
            return None
        params = {"client_id": self.client_id, "post_logout_redirect_uri": self.callback_url("/logout")}
        if data.get("id_token"):
            params["id_token_hint"] = data["id_token"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    def logged_out_page(self) -> Response | None:
        from .oauth_views import logged_out_page

        return logged_out_page(self)

    def callback_url(self, path: str = "/login") -> str:
        """This server's ``<prefix>/login`` (or ``/logout``) as the browser reaches it."""
        if self.redirect_uri:
            base = self.redirect_uri.rstrip("/")
            return base[: -len("/login")] + path if base.endswith("/login") else base
        return request.url_root.rstrip("/") + self.prefix + path


def token_times(token: Mapping[str, Any]) -> dict[str, Any]:
    """When the access token expires (None: the provider said nothing), as a login keeps it."""
    expires_at = token.get("expires_at")
    if expires_at is None and token.get("expires_in"):
        expires_at = time.time() + float(token["expires_in"])
    return {"expires_at": float(expires_at) if expires_at else None}


def _expired(data: Mapping[str, Any]) -> bool:
    expires_at = data.get("expires_at")
    return expires_at is not None and time.time() >= float(expires_at) - REFRESH_MARGIN


def _claim(data: Mapping[str, Any]) -> str:
    return str(data.get("identity", "a user"))


def _describe(exc: BaseException) -> str:
    """An exception in one line, for the log (Authlib's errors carry the provider's code)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
