"""The Python and Bokeh releases bokeh-flask supports, checked at start-up.

Import-light (no Bokeh, no Flask): the CLI checks in the gunicorn master before any worker
imports the web stack. pip already refuses an unsupported Python or Bokeh at install
(``requires-python`` and the ``bokeh`` dependency in ``pyproject.toml``, kept in step with
the ranges below); this catches a Bokeh changed afterwards (``pip install bokeh==3.5``)
with one line at start-up, not a traceback at the first request.
"""
from __future__ import annotations

import sys
from importlib import metadata

from ..config.settings import SettingsError

#: Bokeh releases tested: from the first up to, not including, the second.
SUPPORTED_BOKEH = ((3, 6), (3, 11))
#: Python releases tested, likewise.
SUPPORTED_PYTHON = ((3, 10), (3, 14))


class UnsupportedVersion(SettingsError):
    """The running Python or the installed Bokeh is outside the tested range."""


def version_tuple(version: str) -> tuple[int, ...]:
    """``"3.10.2"`` -> ``(3, 10, 2)``; stops at a pre-release suffix (``"3.11.0rc1"`` -> ``(3, 11, 0)``)."""
    parts: list[int] = []
    for part in version.split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if digits != part:
            break
    return tuple(parts)


def _range(bounds: tuple[tuple[int, int], tuple[int, int]]) -> str:
    (lo_major, lo_minor), (hi_major, hi_minor) = bounds
    return f">={lo_major}.{lo_minor},<{hi_major}.{hi_minor}"


def check_supported(python: tuple[int, ...] | None = None, bokeh_version: str | None = None) -> None:
    """Raise :class:`UnsupportedVersion`, one line naming the supported range, for a Python
    or Bokeh outside it."""
    python = tuple(python or sys.version_info[:3])
    low, high = SUPPORTED_PYTHON
    if not low <= python[:2] < high:
        raise UnsupportedVersion(
            f"bokeh-flask supports Python {_range(SUPPORTED_PYTHON)}; this is Python "
            f"{'.'.join(map(str, python))}")
    found = bokeh_version or metadata.version("bokeh")
    low, high = SUPPORTED_BOKEH
    if not low <= version_tuple(found)[:2] < high:
        raise UnsupportedVersion(
            f"bokeh-flask supports Bokeh {_range(SUPPORTED_BOKEH)}; Bokeh {found} is installed "
            f"(pip install 'bokeh{_range(SUPPORTED_BOKEH)}')")
