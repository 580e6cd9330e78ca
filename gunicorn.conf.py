"""gunicorn settings for bokeh-flask: ``gunicorn -c gunicorn.conf.py wsgi:app``.

The values live in one place, ``bokeh_flask.app.process.gunicorn_config.gunicorn_options`` (shared with
``bokeh-flask serve``), including the ``on_starting`` hook that raises the open-files limit
for ``worker_connections``; anything here can still be overridden on the command line or with
``GUNICORN_CMD_ARGS``. ``BOKEH_DEFAULT_SERVER_PORT`` sets the port (default 5006) and
``BOKEH_FLASK_WORKERS`` the number of workers; ``BOKEH_FLASK_METRICS=1`` gives the workers
one metrics directory (see ``bokeh_flask.app.runtime.metrics``), ``BOKEH_FLASK_ADMIN=1`` one
directory of stats files for the admin page (``bokeh_flask.app.runtime.worker_stats``).
"""
from bokeh_flask.app.config.settings import build_settings, master_environ
from bokeh_flask.app.process.gunicorn_config import gunicorn_options

# only the settings gunicorn's options use (declared master=True); the worker validates
# everything else with a clear message
globals().update(gunicorn_options(build_settings(environ=master_environ())))
