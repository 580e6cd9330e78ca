"""``--oauth-provider github`` (OAuth 2, no OpenID Connect) against a fake GitHub Enterprise
server (``apps/fake_github.py``, at ``--oauth-issuer``): the user comes from the REST API,
with the verified primary email and the organisations as groups."""
from __future__ import annotations

import sys
from typing import Iterator

import pytest
import requests

from tests.support.auth import BokehSocket, cookie_header, page_token
from tests.support.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    COOKIE_SECRET,
    OAUTH_APPS,
    TIMEOUT,
    secret_file,
    start_login,
)
from tests.support.servers import Server, free_port, launch, spawn


@pytest.fixture(scope="module")
def github() -> Iterator[Server]:
    port = free_port()
    server = spawn("fake-github", [sys.executable, str(OAUTH_APPS / "fake_github.py"), str(port)], port,
                   {"PYTHONUNBUFFERED": "1"}, ready=lambda status: status == 200)
    yield server
    server.stop()


def _server(github: Server, *args: str) -> Server:
    return launch("cli", apps=[OAUTH_APPS / "claims.py"], args=[
        "--oauth-provider", "github", "--oauth-issuer", github.url, "--oauth-key", CLIENT_ID,
        "--oauth-secret-file", secret_file(CLIENT_SECRET), "--cookie-secret-file", secret_file(COOKIE_SECRET),
        *args])


def test_a_github_login_names_the_user_by_login_with_email_and_organisations(github):
    server = _server(github, "--oauth-allow-groups", "bokeh-org")
    try:
        session = requests.Session()
        location = start_login(session, server.url + "/claims")
        assert location.startswith(github.url + "/login/oauth/authorize?")
        callback = session.get(location, allow_redirects=False, timeout=TIMEOUT).headers["Location"]
        assert session.get(callback, allow_redirects=False, timeout=TIMEOUT).status_code == 302
        token = page_token(session, server.url + "/claims")
        socket = BokehSocket(server.ws_url + "/claims/ws", token, cookie_header(session))
        try:
            texts = socket.texts()
        finally:
            socket.close()
        assert (texts["who"], texts["name"], texts["groups"]) == ("octocat", "The Octocat", "bokeh-org")
        server.wait_for_log("octocat logged in through 127.0.0.1:")
    finally:
        server.stop()
