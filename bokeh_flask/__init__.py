"""bokeh-flask: a Flask-native Bokeh server.

The checkout's ``app/`` (the core) and ``blueprints/`` (the Flask views) install as
``bokeh_flask.app`` and ``bokeh_flask.blueprints``. Import from here (``from bokeh_flask
import BokehServer``), never from bare ``app`` or ``blueprints``: those names are common in
Flask projects, and the distinct package name keeps a host project's own ``app.py`` or
``blueprints/`` from shadowing ours. Attributes load lazily so the CLI can validate
settings without importing Flask or Bokeh.
"""
from __future__ import annotations

from typing import Any

__all__ = ["BokehServer", "BroadcastError", "FlaskLoginAuth", "broadcast", "create_app", "on_broadcast"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import blueprints

        return getattr(blueprints, name)
    raise AttributeError(f"module 'bokeh_flask' has no attribute {name!r}")
