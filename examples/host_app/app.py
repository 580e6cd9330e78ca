"""An existing Flask app that embeds Bokeh apps, two ways.

1. ``/``       - the Bokeh "sliders" app is mounted *inside this Flask app* at
                 ``/bokeh/sliders`` by the ``BokehServer`` extension, and the
                 host page embeds it with ``server_document``.
2. ``/remote`` - embeds an app running on a *separate* bokeh-flask (or
                 ``bokeh serve``) server, e.g. ``http://localhost:5006/sliders``.

Run (from the repository root; see README.md's "Inside an existing Flask app"):

    gunicorn -k gevent -w 1 -b 127.0.0.1:8000 --chdir examples/host_app app:app
    flask --app examples/host_app/app.py run --port 8000
"""
# gevent must patch the stdlib before anything else imports socket/threading.
from gevent import monkey

monkey.patch_all()

import os

from bokeh.embed import server_document
from flask import Flask, render_template, request

from bokeh_flask import BokehServer

app = Flask(__name__)

# Mount examples/sliders.py at /bokeh/sliders on this same Flask app; a relative path is
# relative to this file's folder (app.root_path), whatever the current directory. Extra
# keyword arguments are bokeh-flask settings (same names as `bokeh serve` options).
bokeh = BokehServer(app, apps={"/sliders": "../sliders.py"}, url_prefix="/bokeh")


@app.route("/")
def index():
    # Absolute URL of the mounted app, e.g. http://127.0.0.1:8000/bokeh/sliders.
    url = request.host_url.rstrip("/") + "/bokeh/sliders"
    return render_template("index.html", script=server_document(url), url=url)


@app.route("/remote")
def remote():
    # The remote server must allow this page's origin, e.g.
    #   bokeh-flask serve examples/sliders.py --port 5006 --allow-websocket-origin=localhost:8000
    url = os.environ.get("BOKEH_REMOTE_URL", "http://localhost:5006/sliders")
    return render_template("remote.html", script=server_document(url), url=url)


@app.route("/health")
def health():
    return "ok"
