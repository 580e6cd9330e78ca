"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app`` or ``flask --app wsgi run``.

Apps come from ``BOKEH_APPS`` (paths separated by ``os.pathsep``), else the bundled
examples; settings from ``BOKEH_*`` variables and, when started by ``bokeh-flask serve``,
the CLI's flags (``BOKEH_FLASK_SETTINGS``).
"""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from bokeh_flask.app.apps.load_errors import describe  # noqa: E402
from bokeh_flask.app.apps.versions import check_supported  # noqa: E402
from bokeh_flask.app.config.settings import SettingsError  # noqa: E402

try:
    check_supported()  # before Bokeh is imported: an unsupported one may fail on import
    from bokeh_flask import create_app

    app = create_app()
except SettingsError as exc:  # a bad BOKEH_* value or app path: one clear line or block, no traceback
    print(f"bokeh-flask: error: {describe(exc)}", file=sys.stderr, end="")
    sys.exit(3)  # gunicorn's "worker failed to boot": the master stops instead of respawning
