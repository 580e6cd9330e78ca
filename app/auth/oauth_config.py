"""Single sign-on's configuration, core side: which provider, where its endpoints are, what
the login keeps, and the start-up check that the provider answers.

``--oauth-provider oidc`` finds everything in the issuer's discovery document
(``<issuer>/.well-known/openid-configuration``: endpoints, signing keys, the end-session
endpoint). ``github`` is OAuth 2 without OpenID Connect: its endpoints are fixed (under
``--oauth-issuer`` for a GitHub Enterprise server) and the user comes from its REST API.

What a login keeps (claims, tokens) lives in the login store, never in a cookie or a
session token, sealed with a key derived from the cookie secret (:class:`Sealer`): the
store, which a shared Redis may expose to other services, holds no usable refresh token.

No Flask and no HTTP client here but ``urllib`` for the start-up check, which runs in the
gunicorn master before any worker exists.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from ..config.settings import Settings, SettingsError
from .access import AccessRule

#: Seconds the start-up discovery request may take.
DISCOVERY_TIMEOUT = 10.0
GITHUB = "https://github.com"


@dataclass(frozen=True)
class ProviderSpec:
    """One provider as the login needs it."""

    kind: str
    #: how pages and log lines name the provider (its issuer's host)
    title: str
    scope: tuple[str, ...]
    user_claim: str
    #: OIDC: the discovery document's URL; GitHub: None (fixed endpoints)
    metadata_url: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    #: GitHub's REST API root (the user, their emails and organisations)
    api_url: str | None = None
    issuer: str | None = None


def spec_for(kind: str, issuer: str | None = None, scope: tuple[str, ...] = (),
             user_claim: str | None = None) -> ProviderSpec:
    """The provider: ``oidc`` at ``issuer``, or ``github`` (at ``issuer`` for GitHub Enterprise)."""
    if kind == "github":
        base = (issuer or GITHUB).rstrip("/")
        api = "https://api.github.com" if base == GITHUB else f"{base}/api/v3"
        return ProviderSpec("github", _host(base), scope or ("read:user", "user:email"), user_claim or "login",
                            authorize_url=f"{base}/login/oauth/authorize",
                            token_url=f"{base}/login/oauth/access_token", api_url=api)
    if kind != "oidc" or not issuer:
        raise SettingsError(f"single sign-on: unknown provider {kind!r} or no issuer URL (oidc needs one)")
    issuer = issuer.rstrip("/")
    if "openid" not in scope:
        scope = ("openid", *(scope or ("email", "profile")))
    return ProviderSpec("oidc", _host(issuer), scope, user_claim or "email",
                        metadata_url=f"{issuer}/.well-known/openid-configuration", issuer=issuer)


def settings_spec(settings: Settings) -> ProviderSpec:
    """The provider ``settings`` name (``oauth_provider`` is set)."""
    assert settings.oauth_provider
    return spec_for(settings.oauth_provider, settings.oauth_issuer, settings.oauth_scope, settings.oauth_user_claim)


def rule_for(settings: Settings) -> AccessRule:
    """The command line's rule for every app."""
    return AccessRule(settings.oauth_allow_users, settings.oauth_allow_domains, settings.oauth_allow_groups,
                      settings.oauth_groups_claim)


def extra_params(settings: Settings) -> dict[str, str]:
    """``--oauth-extra-params`` (checked to be a JSON object of strings)."""
    return dict(json.loads(settings.oauth_extra_params)) if settings.oauth_extra_params else {}


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0] or url


def check_provider(settings: Settings) -> None:
    """At a server's first start: Authlib is installed, and an OIDC issuer's discovery
    document answers and names that issuer; else one line naming the URL (exit 2)."""
    if not settings.oauth_provider:
        return
    try:
        import authlib  # noqa: F401
    except ImportError:
        raise SettingsError("--oauth-provider needs Authlib: pip install 'bokeh-flask[oauth]'") from None
    spec = settings_spec(settings)
    if spec.metadata_url is None:
        return
    try:
        with urllib.request.urlopen(spec.metadata_url, timeout=DISCOVERY_TIMEOUT) as answer:
            metadata = json.load(answer)
    except urllib.error.HTTPError as exc:
        raise SettingsError(f"--oauth-issuer: {spec.metadata_url} answered {exc.code} {exc.reason}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SettingsError(f"--oauth-issuer: the provider's metadata at {spec.metadata_url} cannot be read "
                            f"({reason})") from None
    issuer = metadata.get("issuer") if isinstance(metadata, dict) else None
    if not isinstance(issuer, str) or issuer.rstrip("/") != spec.issuer:
        raise SettingsError(f"--oauth-issuer: {spec.metadata_url} names the issuer {issuer!r}, not {spec.issuer!r}: "
                            "give the issuer exactly as the provider names it")


class Sealer:
    """AES-GCM with a key derived from the cookie secret: what a login keeps in the store
    can be neither read nor changed there."""

    def __init__(self, secret: str | bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # Authlib's dependency

        raw = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
        self._aead = AESGCM(hashlib.sha256(b"bokeh-flask login data\0" + raw).digest())

    def seal(self, data: Mapping[str, Any]) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(data, separators=(",", ":")).encode(), None)
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, text: str) -> dict[str, Any] | None:
        """The data, or None for anything this key did not seal."""
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(text)
            data = json.loads(self._aead.decrypt(raw[:12], raw[12:], None))
        except (ValueError, InvalidTag):
            return None
        return data if isinstance(data, dict) else None
