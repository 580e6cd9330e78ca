"""bokeh-flask with its own login page: Flask-Login plus a credential check.

``FlaskLoginAuth(check_credentials=...)`` installs Flask-Login, serves ``/login`` (a
CSRF-protected form) and ``/logout``, and sends anonymous visitors of any Bokeh page to the
login page. The check below is a toy: replace it with your user store.

Run (from the repository root):

    SECRET_KEY=change-me gunicorn -k gevent -b 127.0.0.1:5006 --chdir examples/auth standalone:app
    SECRET_KEY=change-me flask --app examples/auth/standalone.py run --port 5006

then open http://localhost:5006/hello and log in as alice / wonderland or bob / builder.
"""
# gevent must patch the stdlib before anything else imports socket/threading.
from gevent import monkey

monkey.patch_all()

import hmac
import os
from pathlib import Path

from flask import Flask

from bokeh_flask import BokehServer
from bokeh_flask.blueprints import FlaskLoginAuth

HERE = Path(__file__).resolve().parent

#: Toy user store: name -> password. Use hashed passwords (werkzeug.security) for real.
USERS = {"alice": "wonderland", "bob": "builder"}


def check_credentials(username: str, password: str) -> bool:
    expected = USERS.get(username)
    return expected is not None and hmac.compare_digest(expected.encode(), password.encode())


# static_folder=None: BokehJS is served at /static
app = Flask(__name__, static_folder=None)
# signs the login cookie; every worker must use the same key
app.secret_key = os.environ["SECRET_KEY"]

BokehServer(app, apps={"/hello": str(HERE / "hello_user.py")},
            auth=FlaskLoginAuth(check_credentials=check_credentials))


@app.route("/health")
def health() -> str:
    return "ok"
