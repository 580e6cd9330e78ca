"""A host Flask app that forgot its secret key: FlaskLoginAuth keeps logins in Flask's
signed session cookie, so it cannot start."""
from gevent import monkey

monkey.patch_all()

from pathlib import Path

from flask import Flask

from bokeh_flask import BokehServer
from bokeh_flask.blueprints import FlaskLoginAuth

app = Flask(__name__)
BokehServer(app, apps={"/hello": str(Path(__file__).resolve().parents[2] / "apps" / "hello.py")},
            auth=FlaskLoginAuth(check_credentials=lambda name, password: False))
