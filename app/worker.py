"""Moved to :mod:`bokeh_flask.app.process.worker`; this path stays for gunicorn
configurations that name ``bokeh_flask.app.worker.BokehGeventWorker``."""
from .process.worker import BokehGeventWorker

__all__ = ["BokehGeventWorker"]
