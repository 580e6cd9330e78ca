"""examples/auth/standalone.py as its docstring runs it (gunicorn's gevent worker)."""
from __future__ import annotations

import requests
from bokeh.util.token import get_token_payload

from tests.support.auth import TIMEOUT, launch_flask_app, login, logout, page_token
from tests.support.servers import EXAMPLES


def test_standalone_example_logs_in_with_its_credential_check():
    server = launch_flask_app(EXAMPLES / "auth" / "standalone.py", "gunicorn",
                              env={"SECRET_KEY": "example-secret-" + "z" * 20})
    try:
        anonymous = requests.get(server.url + "/hello", timeout=TIMEOUT, allow_redirects=False)
        assert anonymous.headers["Location"] == "/login?next=%2Fhello"
        session = login(server.url, "alice", "wonderland")
        assert get_token_payload(page_token(session, server.url + "/hello"))["bokeh_user"] == "alice"
        out = logout(session, server.url)
        assert out.status_code == 302 and out.headers["Location"] == "/login"
        assert session.get(server.url + "/hello", timeout=TIMEOUT,
                           allow_redirects=False).status_code == 302
    finally:
        server.stop()
