"""The single sign-on pages: ``<prefix>/login`` sends the browser to the provider and, when
the provider sends it back (``?code=...&state=...``, the redirect URI to register), finishes
the login; plus the answers for a refused login, an unreachable provider and a logout.

Every refusal is a page with its status and one warning line, never a traceback: a state
that is missing or not this browser's (400), a code the provider refuses (a replayed one:
400), an ID token that fails Authlib's checks (issuer, audience, expiry, nonce, signature
against the provider's keys: 400), a provider that cannot be reached (502).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Response, redirect, request, session
from flask_login import login_user
from werkzeug.wrappers import Response as BaseResponse

from ..views import BokehView
from .flask_login_auth import LoginUser
from .login_handlers import CSRF_SESSION_KEY, local_target, page
from .oauth_login import OAuthLogin, token_times

log = logging.getLogger(__name__)

#: Flask session key: where the browser goes once logged in (a path on this site).
NEXT_KEY = "_bokeh_flask_next"


class LoginRefused(Exception):
    """A login that cannot finish: the status, what the user reads, and the log's detail."""

    def __init__(self, status: int, message: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.message, self.detail = status, message, detail


class OAuthLoginView(BokehView):
    """``<prefix>/login``: to the provider, and back from it."""

    methods = ["GET"]

    @property
    def provider(self) -> OAuthLogin:
        provider = self.core.auth_provider
        assert isinstance(provider, OAuthLogin)
        return provider

    def get(self) -> BaseResponse:
        provider = self.provider
        home = request.script_root + (self.route_options["prefix"] or "") + "/"
        try:
            if any(key in request.args for key in ("code", "state", "error")):
                return self._finish(provider, home)
            session[NEXT_KEY] = local_target(request.args.get("next"), home)
            assert provider.client is not None
            # the discovery document is read again at each login: a provider that is down
            # gets this page naming it (not the browser's error at the provider), and
            # changed endpoints or keys are followed without a restart
            provider.client.server_metadata.pop("_loaded_at", None)
            try:
                answer: BaseResponse = provider.client.authorize_redirect(provider.callback_url(),
                                                                          **provider.extra_params)
            except Exception as exc:
                raise _classified(provider, exc) from None
            return answer
        except LoginRefused as refused:
            log.warning("single sign-on through %s refused for %s: %s", provider.spec.title,
                        request.remote_addr, refused.detail)
            return _message(provider, refused.status, "Login failed" if refused.status < 500
                            else "Login provider unavailable", refused.message, "Start the login again")

    def _finish(self, provider: OAuthLogin, home: str) -> BaseResponse:
        assert provider.client is not None and provider.store is not None
        try:
            token = provider.client.authorize_access_token()
            claims = _claims(provider, token)
        except LoginRefused:
            raise
        except Exception as exc:
            raise _classified(provider, exc) from None
        user_claim = provider.spec.user_claim
        identity = claims.get(user_claim)
        if not isinstance(identity, str) or not identity.strip():
            raise LoginRefused(403, f"{provider.spec.title} did not say who you are (no {user_claim!r} claim).",
                               f"no {user_claim!r} claim (claims: {sorted(claims)}); see --oauth-user-claim")
        login_id = provider.store.start(identity)
        provider.keep(login_id, {"identity": identity, "claims": claims, "id_token": token.get("id_token"),
                                 "refresh_token": token.get("refresh_token"), **token_times(token)})
        session.pop(CSRF_SESSION_KEY, None)
        login_user(LoginUser(identity, login_id, claims))
        log.info("%s logged in through %s", identity, provider.spec.title)
        return redirect(local_target(session.pop(NEXT_KEY, None), home))


def _claims(provider: OAuthLogin, token: dict[str, Any]) -> dict[str, Any]:
    """The user's claims: the validated ID token's (completed from the userinfo endpoint
    when it lacks the user claim), or GitHub's user, verified email and organisations."""
    assert provider.client is not None
    if provider.spec.kind == "github":
        return _github_claims(provider, token)
    userinfo = token.get("userinfo")
    if userinfo is None:
        raise LoginRefused(400, "The provider's answer held no ID token.", "no id_token in the token response")
    claims = dict(userinfo)
    if provider.spec.user_claim not in claims and provider.client.load_server_metadata().get("userinfo_endpoint"):
        extra = dict(provider.client.userinfo(token=token))
        if extra.get("sub") == claims.get("sub"):
            claims = {**extra, **claims}
    return claims


def _github_claims(provider: OAuthLogin, token: dict[str, Any]) -> dict[str, Any]:
    client = provider.client
    assert client is not None

    def get(path: str) -> Any:
        answer = client.get(path, token=token)
        answer.raise_for_status()
        return answer.json()

    user = get("user")
    emails = get("user/emails")
    primary = next((e for e in emails if e.get("primary") and e.get("verified")), None)
    orgs = get("user/orgs")
    return {"sub": str(user["id"]), "login": user["login"], "name": user.get("name") or user["login"],
            "email": primary["email"] if primary else None, "email_verified": primary is not None,
            "groups": [org["login"] for org in orgs]}


def _classified(provider: OAuthLogin, exc: Exception) -> LoginRefused:
    """What a failure of the login's exchange with the provider means to the user."""
    import requests
    from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError

    name = type(exc).__name__
    detail = " ".join(str(exc).split())[:300]
    if isinstance(exc, MismatchingStateError):
        return LoginRefused(400, "This login was not started in this browser, or it was already used.",
                            f"state missing or not this browser's ({name})")
    if isinstance(exc, OAuthError):
        if exc.error == "access_denied":
            return LoginRefused(403, f"{provider.spec.title} did not log you in.", f"access_denied: {detail}")
        return LoginRefused(400, f"{provider.spec.title} refused the login ({exc.error}).", f"{name}: {detail}")
    if isinstance(exc, requests.RequestException):
        return LoginRefused(502, f"The login provider {provider.spec.title} cannot be reached right now; "
                                 "try again in a moment.", f"provider unreachable: {name}: {detail}")
    if _is_token_error(exc):
        return LoginRefused(400, f"The identity {provider.spec.title} sent could not be verified.",
                            f"invalid ID token: {name}: {detail}")
    log.exception("single sign-on: unexpected answer from %s", provider.spec.title)
    return LoginRefused(502, f"The answer of the login provider {provider.spec.title} could not be used.",
                        f"{name}: {detail}")


def _is_token_error(exc: Exception) -> bool:
    """Authlib's and joserfc's JOSE errors (older Authlib validates with its own)."""
    from authlib.common.errors import AuthlibBaseError

    if isinstance(exc, AuthlibBaseError):
        return True
    try:
        from joserfc.errors import JoseError
    except ImportError:  # an Authlib before joserfc
        return False
    return isinstance(exc, JoseError)


def _message(provider: OAuthLogin, status: int, title: str, message: str, button: str) -> Response:
    action = request.script_root + (provider.public_login_url(provider.prefix) or "/")
    return page("sso_message.html", status, title=title, message=message, button=button, action=action,
                method="get", csrf_token="")


def logged_out_page(provider: OAuthLogin) -> Response:
    """Where a logout ends (the provider's too): a page, not the login, which would log the
    user straight back in while the provider's own login lasts."""
    return _message(provider, 200, "Logged out", "You are logged out.", "Log in again")
