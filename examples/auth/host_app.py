"""An existing Flask app with its own Flask-Login guards a mounted Bokeh app.

The host owns users, the login page and logout. ``FlaskLoginAuth()`` (no credential
check) makes bokeh-flask use the host's ``LoginManager``: anonymous visitors of
``/bokeh/hello`` go to the host's ``login_view`` with ``next``, the Bokeh app sees the
host's user as ``curdoc().session_context.user`` (``user.get_id()``), and the host's
``logout_user()`` ends that login (a saved cookie no longer works, in any worker) and the
user's Bokeh sessions. Logging out takes a POST with a CSRF token.

Run (from the repository root):

    SECRET_KEY=change-me gunicorn -k gevent -b 127.0.0.1:8000 --chdir examples/auth host_app:app

then open http://localhost:8000/ and log in as alice / wonderland or bob / builder.
"""
# gevent must patch the stdlib before anything else imports socket/threading.
from gevent import monkey

monkey.patch_all()

import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from bokeh.embed import server_document
from flask import Flask, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from bokeh_flask import BokehServer
from bokeh_flask.blueprints import FlaskLoginAuth

HERE = Path(__file__).resolve().parent

#: Toy user store: id -> (display name, password).
USERS = {"alice": ("Alice", "wonderland"), "bob": ("Bob", "builder")}


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id
        self.name = USERS[user_id][0]


app = Flask(__name__)
app.secret_key = os.environ["SECRET_KEY"]
app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True)

login_manager = LoginManager(app)
login_manager.login_view = "login"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return User(user_id) if user_id in USERS else None


# The host's static files live at /static, so Bokeh is mounted under /bokeh.
BokehServer(app, apps={"/hello": str(HERE / "hello_user.py")}, url_prefix="/bokeh",
            auth=FlaskLoginAuth(logout_url="/logout"))


def _safe_next(target: str | None) -> str:
    """A path on this site only: no scheme or host, no backslash, no control characters."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and all(" " < ch != "\\" for ch in target):
            return target
    return url_for("index")


def _csrf_token() -> str:
    token = session.get("csrf_token")
    if not token:
        token = session["csrf_token"] = secrets.token_urlsafe(32)
    return token


@app.route("/login", methods=["GET", "POST"])
def login():
    error = ""
    if request.method == "POST":
        user_id = request.form.get("username", "")
        password = request.form.get("password", "")
        known = USERS.get(user_id)
        if known and hmac.compare_digest(known[1].encode(), password.encode()):
            login_user(User(user_id))
            return redirect(_safe_next(request.form.get("next")))
        error = "Wrong username or password."
    return render_template("host_login.html", error=error, next=request.values.get("next", ""))


@app.route("/logout", methods=["GET", "POST"])
@login_required
def logout():
    """A GET asks; only a POST carrying the CSRF token logs out (no other site can)."""
    if request.method == "GET":
        return render_template("host_logout.html", csrf_token=_csrf_token(), name=current_user.name)
    if not hmac.compare_digest(_csrf_token().encode(), request.form.get("csrf_token", "").encode()):
        return "Bad Request: missing or wrong CSRF token", 400
    logout_user()  # bokeh-flask ends this login, in every worker, and the user's Bokeh sessions
    return redirect(url_for("login"))


@app.route("/")
@login_required
def index():
    script = server_document(request.host_url.rstrip("/") + "/bokeh/hello")
    return render_template("host_index.html", script=script, name=current_user.name)


@app.route("/health")
def health() -> str:
    return "ok"
