"""The URL key each app is served at (``/sliders`` for ``sliders.py``), as ``bokeh serve``
names them. Import-light (no Bokeh): the CLI prints the apps' URLs before any worker starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

#: The bundled examples, served when no apps are named.
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_APPS = ("sliders.py", "streaming.py", "dashboard")
#: Where ``--admin`` serves the admin page (:mod:`.admin_app`).
ADMIN_KEY = "/admin"


def normalize_key(key: str) -> str:
    stripped = key.strip("/")
    return f"/{stripped}" if stripped else "/"


def key_for_path(path: str) -> str:
    """``app.py`` and ``app.ipynb`` -> ``/app``; a directory app -> ``/<its name>``."""
    p = Path(path.rstrip("/\\"))
    return normalize_key(p.stem if p.is_file() or p.suffix in (".py", ".ipynb") else p.name)


def refuse_admin_key(keys: Iterable[str]) -> None:
    """With ``--admin``, no app of the user's may be served where the admin page is."""
    if ADMIN_KEY in keys:
        from ..config.settings import SettingsError

        raise SettingsError(f"--admin: an app is already served at {ADMIN_KEY}: serve it under "
                            "another name, or leave --admin off")
