"""Validation: the checks settings are declared with (one value each), and the few that
look at several settings at once (:data:`ACROSS`).

A check returns the problem as one line that starts with the flag's name (what the user
typed), or None; :func:`.settings.validate` raises the first as :class:`.SettingsError`.
"""
from __future__ import annotations

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


ACROSS: tuple[Across, ...] = (_signing_needs_a_secret, _include_or_exclude, _metrics_token_needs_metrics,
                              _origins_parse)

