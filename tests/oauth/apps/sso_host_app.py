"""Test host app: a Flask app that mounts Bokeh apps under /bokeh behind single sign-on,
with a rule per app and a hook (``OAuthLogin`` through the host-app API). The provider and
secrets come from the environment (OIDC_ISSUER, OIDC_CLIENT_SECRET, SECRET_KEY)."""
from gevent import monkey

monkey.patch_all()

import os
from pathlib import Path

from flask import Flask

from bokeh_flask import AccessRule, BokehServer, OAuthLogin

CLAIMS = str(Path(__file__).resolve().parent / "claims.py")

app = Flask(__name__, static_folder=None)
app.secret_key = os.environ["SECRET_KEY"]


@app.get("/health")
def health() -> str:
    return "ok"


def not_blocked(identity: str, claims: dict, app_key: str) -> bool:
    return identity != "blocked@example.com"


BokehServer(app, apps={"/claims": CLAIMS, "/staff": CLAIMS}, url_prefix="/bokeh", auth=OAuthLogin(
    "oidc", issuer=os.environ["OIDC_ISSUER"], client_id="bokeh-flask-test",
    client_secret=os.environ["OIDC_CLIENT_SECRET"], allow=AccessRule(domains=("example.com",)),
    apps={"/staff": AccessRule(groups=("staff",))}, authorize=not_blocked))
