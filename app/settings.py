"""Moved to :mod:`bokeh_flask.app.config.settings`; this path stays for gunicorn
configurations (copies of ``gunicorn.conf.py``) that import ``build_settings`` from it."""
from .config.settings import Settings, SettingsError, build_settings

__all__ = ["Settings", "SettingsError", "build_settings"]
