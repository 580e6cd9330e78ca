"""Test server: bokeh-flask's standalone Flask-Login provider serving whoami.py.

Environment: ``AUTH_TEST_URL_PREFIX`` mounts bokeh-flask under a url_prefix and
``AUTH_TEST_PREFIX`` sets its own ``prefix`` setting (both optional); with
``AUTH_TEST_CHECK_LOG`` each password check appends a line to that file, so a test counts
the guesses that reached ``check_credentials``, and takes a moment as a password hash does,
so concurrent guesses overlap. Users: alice/alice-pw, bob/bob-pw.
"""
from gevent import monkey

monkey.patch_all()

import os
import time
from pathlib import Path

from flask import Flask

from bokeh_flask import BokehServer
from bokeh_flask.blueprints import FlaskLoginAuth

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
CHECK_LOG = os.environ.get("AUTH_TEST_CHECK_LOG")


def check_credentials(name: str, password: str) -> bool:
    if CHECK_LOG:
        with open(CHECK_LOG, "a") as log:  # one short append per check: atomic across workers
            log.write(f"{name}\n")
        time.sleep(0.05)  # a password hash's cost (gevent-patched: other requests run meanwhile)
    return USERS.get(name) == password


app = Flask(__name__, static_folder=None)
app.secret_key = "test-secret-" + "x" * 20

BokehServer(app, apps={"/whoami": str(Path(__file__).with_name("whoami.py"))},
            url_prefix=os.environ.get("AUTH_TEST_URL_PREFIX", ""),
            prefix=os.environ.get("AUTH_TEST_PREFIX", ""),
            auth=FlaskLoginAuth(check_credentials=check_credentials))


@app.route("/health")
def health() -> str:
    return "ok"
