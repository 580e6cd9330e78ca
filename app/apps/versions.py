"""The Python and Bokeh releases bokeh-flask supports, checked at start-up.

Import-light (no Bokeh, no Flask): the CLI checks in the gunicorn master before any worker
imports the web stack. pip already refuses an unsupported Python or Bokeh at install
(``requires-python`` and the ``bokeh`` dependency in ``pyproject.toml``, kept in step with
the ranges below); this catches a Bokeh changed afterwards (``pip install bokeh==3.5``)
with one line at start-up, not a traceback at the first request.

Inside the ranges, what CI does not test starts with a one-line warning instead of a
refusal: a Python newer than the newest tested (nothing is known broken there, so nothing
caps it), a Bokeh pre-release (pip installs one only when asked: ``bokeh==4.0.0.dev8``), and
a Bokeh release newer than the newest tested.
"""
from __future__ import annotations

import os
import re
import sys
from importlib import metadata

from ..config.settings import SettingsError

#: Bokeh releases supported: from the first up to, not including, the second (4.0: its
#: pre-releases, which CI tests; pyproject.toml's dependency says the same to pip).
SUPPORTED_BOKEH = ((3, 6), (4, 1))
#: The newest Bokeh release line CI tests as a release.
NEWEST_TESTED_BOKEH = (3, 10)
#: The Bokeh pre-release CI tests (its lane in .ci/run pins it; bumped on purpose only).
TESTED_BOKEH_PRERELEASE = "4.0.0.dev8"
#: The oldest Python supported (``requires-python``; older ones are refused).
OLDEST_PYTHON = (3, 10)
#: The newest Python CI tests; newer ones start with a warning.
NEWEST_TESTED_PYTHON = (3, 13)

#: Set in the environment once the warnings are shown, so the workers a server forks (which
#: inherit it) and a process's later ServerCores do not repeat them.
NOTED_ENV = "BOKEH_FLASK_UNTESTED_NOTED"

#: A final release (a post-release included): digits and dots, then optionally ``.postN``.
_RELEASE = re.compile(r"\d+(\.\d+)*(\.?post\d+)?")


class UnsupportedVersion(SettingsError):
    """The running Python or the installed Bokeh is outside the supported range."""


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


def is_prerelease(version: str) -> bool:
    """Whether ``version`` is a pre-release or development release (``4.0.0.dev8``,
    ``3.11.0rc1``) rather than a release (``3.10.2``, ``3.10.2.post1``, ``3.10.2+local``)."""
    return _RELEASE.fullmatch(version.split("+", 1)[0]) is None


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def _range(bounds: tuple[tuple[int, int], tuple[int, int]]) -> str:
    low, high = bounds
    return f">={_dotted(low)},<{_dotted(high)}"


def check_supported(python: tuple[int, ...] | None = None, bokeh_version: str | None = None) -> list[str]:
    """Raise :class:`UnsupportedVersion`, one line naming the supported range, for a Python
    or Bokeh outside it; return the one-line warnings for what is inside it but untested."""
    python = tuple(python or sys.version_info[:3])
    warnings: list[str] = []
    if python[:2] < OLDEST_PYTHON:
        raise UnsupportedVersion(
            f"bokeh-flask supports Python >={_dotted(OLDEST_PYTHON)}; this is Python {_dotted(python)}")
    if python[:2] > NEWEST_TESTED_PYTHON:
        warnings.append(f"Python {_dotted(python)} is newer than the newest Python bokeh-flask is tested "
                        f"on ({_dotted(NEWEST_TESTED_PYTHON)}): it runs, untested")
    found = bokeh_version or metadata.version("bokeh")
    low, high = SUPPORTED_BOKEH
    if not low <= version_tuple(found)[:2] < high:
        raise UnsupportedVersion(
            f"bokeh-flask supports Bokeh {_range(SUPPORTED_BOKEH)}; Bokeh {found} is installed "
            f"(pip install 'bokeh{_range(SUPPORTED_BOKEH)}')")
    if is_prerelease(found):
        warnings.append(f"Bokeh {found} is a pre-release; the one bokeh-flask is tested with is "
                        f"{TESTED_BOKEH_PRERELEASE}" + (" (this one)" if found == TESTED_BOKEH_PRERELEASE else ""))
    elif version_tuple(found)[:2] > NEWEST_TESTED_BOKEH:
        warnings.append(f"Bokeh {found} is newer than the newest release bokeh-flask is tested with "
                        f"({_dotted(NEWEST_TESTED_BOKEH)}.x): it runs, untested")
    return warnings


def untested_notices() -> list[str]:
    """:func:`check_supported` (it raises the same), with its warnings only the first time in
    this process and the ones it starts: one line at start, not one per worker."""
    notices = check_supported()
    if os.environ.get(NOTED_ENV) == "1":
        return []
    os.environ[NOTED_ENV] = "1"
    return notices
