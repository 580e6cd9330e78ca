"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app`` or ``flask --app wsgi run``.

Apps come from ``BOKEH_APPS`` (paths separated by ``os.pathsep``), else the bundled
examples; settings from ``BOKEH_*`` variables and, when started by ``bokeh-flask serve``,
the CLI's flags (``BOKEH_FLASK_SETTINGS``).
"""
from gevent import monkey

monkey.patch_all()

from bokeh_flask import create_app  # noqa: E402

app = create_app()
