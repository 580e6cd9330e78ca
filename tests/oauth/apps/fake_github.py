"""GitHub's OAuth 2 endpoints and the three REST calls a login makes, as a GitHub Enterprise
server at ``http://127.0.0.1:PORT`` answers them: ``python fake_github.py PORT``. It
authorizes at once (as GitHub does for an app the user approved before), checks the client
secret and the code, and serves the user octocat with a verified primary email and one
organisation."""
import secrets
import sys
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request

port = int(sys.argv[1])
CLIENT = ("bokeh-flask-test", "client-secret-" + "s" * 24)
codes: set[str] = set()
tokens: set[str] = set()
app = Flask(__name__)


@app.get("/")
def home():
    return "fake GitHub"


@app.get("/login/oauth/authorize")
def authorize():
    code = secrets.token_urlsafe(16)
    codes.add(code)
    return redirect(request.args["redirect_uri"] + "?" + urlencode({"code": code, "state": request.args["state"]}))


@app.post("/login/oauth/access_token")
def access_token():
    auth = request.authorization
    form = request.form
    sent = (auth.username, auth.password) if auth else (form.get("client_id"), form.get("client_secret"))
    if sent != CLIENT or request.form.get("code") not in codes:
        return jsonify(error="bad_verification_code"), 200  # GitHub answers errors with 200
    codes.discard(request.form["code"])
    token = secrets.token_urlsafe(16)
    tokens.add(token)
    return jsonify(access_token=token, token_type="bearer", scope="read:user,user:email")


def _authorized() -> bool:
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip() in tokens


@app.get("/api/v3/user")
def user():
    if not _authorized():
        return jsonify(message="Bad credentials"), 401
    return jsonify(id=583231, login="octocat", name="The Octocat", email=None)


@app.get("/api/v3/user/emails")
def emails():
    if not _authorized():
        return jsonify(message="Bad credentials"), 401
    return jsonify([{"email": "octo@old.example", "primary": False, "verified": True},
                    {"email": "octocat@example.com", "primary": True, "verified": True}])


@app.get("/api/v3/user/orgs")
def orgs():
    if not _authorized():
        return jsonify(message="Bad credentials"), 401
    return jsonify([{"login": "bokeh-org", "id": 1}])


app.run("127.0.0.1", port, threaded=True)
