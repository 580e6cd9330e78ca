"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app`` or ``flask --app wsgi run``.

Apps come from ``BOKEH_APPS`` (paths separated by ``os.pathsep``), else the bundled
examples; settings from ``BOKEH_*`` variables and, when started by ``bokeh-flask serve``,
the CLI's flags (``BOKEH_FLASK_SETTINGS``).
"""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402

from flask import Flask  # noqa: E402

from blueprints import BokehServer  # noqa: E402


def create_app() -> Flask:
    flask_app = Flask(__name__, static_folder=None)
    overrides = json.loads(os.environ.get("BOKEH_FLASK_SETTINGS", "{}"))
    BokehServer(flask_app, **overrides)
    return flask_app


app = create_app()
