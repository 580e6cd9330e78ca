"""Moved to :mod:`bokeh_flask.app.process.gunicorn_config`; this path stays for gunicorn
configurations that import ``gunicorn_options`` or ``post_worker_init`` from it."""
from .process.gunicorn_config import gunicorn_options, post_worker_init

__all__ = ["gunicorn_options", "post_worker_init"]
