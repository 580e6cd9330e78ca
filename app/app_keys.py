"""The URL key each app is served at (``/sliders`` for ``sliders.py``), as ``bokeh serve``
names them. Import-light (no Bokeh): the CLI prints the apps' URLs before any worker starts.
"""
from __future__ import annotations

from pathlib import Path

#: The bundled examples, served when no apps are named.
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_APPS = ("sliders.py", "streaming.py", "dashboard")


def normalize_key(key: str) -> str:
    stripped = key.strip("/")
    return f"/{stripped}" if stripped else "/"


def key_for_path(path: str) -> str:
    """``app.py`` and ``app.ipynb`` -> ``/app``; a directory app -> ``/<its name>``."""
    p = Path(path.rstrip("/\\"))
    return normalize_key(p.stem if p.is_file() or p.suffix in (".py", ".ipynb") else p.name)
