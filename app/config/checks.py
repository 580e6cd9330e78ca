"""Validation: the checks settings are declared with (one value each), and the few that
look at several settings at once (:data:`ACROSS`).

A check returns the problem as one line that starts with the flag's name (what the user
typed), or None; :func:`.settings.validate` raises the first as :class:`.SettingsError`.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Callable, Mapping
from urllib.parse import urlsplit

from .declare import Check
from .origins import OriginAllowlist

if TYPE_CHECKING:
    from .options import Settings


def greater_than_zero(value: int, flag: str) -> str | None:
    return None if value > 0 else f"{flag} must be greater than 0, got {value}"


def zero_or_more(value: int, flag: str) -> str | None:
    return None if value >= 0 else f"{flag} must be 0 (off) or more, got {value}"


def between(low: int, high: int, meaning: str = "") -> Check:
    """A value in ``low..high``; ``meaning`` says what those bounds are."""
    extra = f" ({meaning})" if meaning else ""
    return lambda value, flag: (None if low <= value <= high
                                else f"{flag} must be between {low} and {high}{extra}, got {value}")


def one_of(*choices: str, ignore_case: bool = False) -> Check:
    def check(value: str, flag: str) -> str | None:
        if (value.lower() if ignore_case else value) in choices:
            return None
        return f"{flag} must be one of {', '.join(choices)}, got {value!r}"

    return check


def existing_file(what: str = "file", unless: tuple[str, ...] = ()) -> Check:
    """A path to a file; the words in ``unless`` (any case) mean something else."""
    def check(value: str, flag: str) -> str | None:
        if value.lower() in unless or os.path.isfile(value):
            return None
        return f"{flag}: no such {what}: {value}"

    return check


def url(*schemes: str) -> Check:
    """A URL of one of ``schemes``; a wrong one is not echoed (it may hold a password)."""
    def check(value: str, flag: str) -> str | None:
        scheme = urlsplit(value).scheme
        if scheme in schemes:
            return None
        return (f"{flag} must be a {' or '.join(f'{s}://' for s in schemes)} URL, "
                f"got {f'a {scheme}:// URL' if scheme else 'no scheme'}")

    return check


def header_token(value: str, flag: str) -> str | None:
    if value and all(" " < ch < "\x7f" for ch in value):
        return None
    return f"{flag}: the token must be printable ASCII without spaces (it travels in an Authorization header)"


def json_object(value: str, flag: str) -> str | None:
    """A JSON object of strings (extra query parameters)."""
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        return f"{flag}: not JSON ({exc})"
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        return f'{flag}: expected a JSON object of strings, such as {{"prompt": "login"}}'
    return None


#: A check across settings: the problem, or None. ``labels`` maps a setting to the name
#: messages give it (``--metrics-token-file`` for a token read from that file).
Across = Callable[["Settings", Mapping[str, str]], "str | None"]


def _signing_needs_a_secret(settings: Settings, labels: Mapping[str, str]) -> str | None:
    if settings.sign_sessions and not settings.secret_key:
        return ("session signing is on but no secret key is set: set BOKEH_SECRET_KEY "
                "(make one with `bokeh-flask secret`)")
    return None


def _include_or_exclude(settings: Settings, labels: Mapping[str, str]) -> str | None:
    for kind in ("headers", "cookies"):
        if getattr(settings, f"include_{kind}") and getattr(settings, f"exclude_{kind}"):
            return f"{labels[f'include_{kind}']} and {labels[f'exclude_{kind}']} cannot be used together"
    return None


def _metrics_token_needs_metrics(settings: Settings, labels: Mapping[str, str]) -> str | None:
    if settings.metrics_token is not None and not settings.metrics:
        return (f"{labels['metrics_token']} needs {labels['metrics']} (BOKEH_FLASK_METRICS=1): "
                "without it there is no /metrics to protect")
    return None


def _origins_parse(settings: Settings, labels: Mapping[str, str]) -> str | None:
    OriginAllowlist.parse(settings.allow_websocket_origin, settings.port)  # raises, naming the flag
    return None


def _oauth_complete(settings: Settings, labels: Mapping[str, str]) -> str | None:
    """Single sign-on needs its client and a cookie secret; its other settings need it."""
    if not settings.oauth_provider:
        named = [labels[name] for name in ("oauth_issuer", "oauth_key", "oauth_secret", "oauth_redirect_uri",
                                           "oauth_user_claim", "oauth_allow_users", "oauth_allow_domains",
                                           "oauth_allow_groups") if getattr(settings, name)]
        return f"{named[0]} needs --oauth-provider" if named else None
    needed = {"oauth_key": f"{labels['oauth_key']} CLIENT_ID",
              "oauth_secret": "--oauth-secret-file PATH (or BOKEH_FLASK_OAUTH_SECRET): the client secret"}
    if settings.oauth_provider == "oidc":
        needed = {"oauth_issuer": f"{labels['oauth_issuer']} URL", **needed}
    for name, what in needed.items():
        if not getattr(settings, name):
            return f"--oauth-provider {settings.oauth_provider} needs {what}"
    if settings.auth_module:
        return f"{labels['auth_module']} and --oauth-provider cannot be used together: pick one login"
    if not settings.cookie_secret:
        return ("--oauth-provider keeps the login in a signed cookie: give --cookie-secret-file PATH "
                "(make the secret with `bokeh-flask secret`) or BOKEH_COOKIE_SECRET")
    if settings.cookie_samesite == "Strict":
        return ("--cookie-samesite Strict drops the login cookie on the provider's redirect back, "
                "so no login could finish: use Lax (the default) or None")
    return None


ACROSS: tuple[Across, ...] = (_signing_needs_a_secret, _include_or_exclude, _metrics_token_needs_metrics,
                              _origins_parse, _oauth_complete)

