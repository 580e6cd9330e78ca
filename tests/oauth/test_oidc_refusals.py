"""What a provider can do wrong, and the refusals it must meet: ID tokens for another client,
from another issuer, expired, signed with a key the provider does not publish, or for
another login's nonce (a rogue provider, ``apps/rogue_provider.py``); a provider that
cannot be reached at start (one line, exit 2) or at login (a 502 page naming it); and a
login whose access token expires, renewed with its refresh token until the provider
refuses (oidc-provider-mock with 34-second tokens: due for renewal 4 s after login, time
enough to open a tab and revoke the grant first), then the same provider gone.
"""
from __future__ import annotations

import subprocess
import time
from typing import Iterator

import pytest
import requests

from tests.support.auth import BokehSocket, cookie_header, handshake_status, page_token
from tests.support.oidc import (
    CLAIMS_APP,
    TIMEOUT,
    authorize,
    launch_sso_server,
    page_message,
    set_user,
    sso_args,
    sso_login,
    start_login,
    start_provider,
    start_rogue_provider,
)
from tests.support.servers import BIN, Server, free_port

ALICE = "alice@example.com"


@pytest.fixture(scope="module")
def rogue() -> Iterator[Server]:
    server = start_rogue_provider()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rogue_sso(rogue) -> Iterator[Server]:
    server = launch_sso_server(rogue)
    yield server
    server.stop()


@pytest.mark.parametrize("fault, why", [
    # another audience without an authorized party naming us: Authlib names the missing azp
    ("audience", ("'aud'", "'azp'")), ("issuer", ("'iss'",)), ("expired", ("expired",)),
    ("foreign-key", ("signature",)), ("nonce", ("'nonce'",)),
])
def test_an_id_token_that_breaks_a_rule_is_refused(rogue, rogue_sso, fault, why):
    requests.post(rogue.url + "/fault", data={"fault": fault}, timeout=TIMEOUT).raise_for_status()
    session = requests.Session()
    callback = authorize(session, start_login(session, rogue_sso.url + "/claims"), "eve")
    answer = session.get(callback, timeout=TIMEOUT, allow_redirects=False)
    assert answer.status_code == 400, answer.text[:300]
    assert page_message(answer.text) == "The identity 127.0.0.1:%d sent could not be verified." % rogue.port
    assert "Traceback" not in rogue_sso.log_text()
    line = rogue_sso.log_text().strip().splitlines()[-1]
    assert "invalid ID token" in line and any(word in line.lower() for word in why), line
    # nobody is logged in: the app still sends the browser to the login
    assert session.get(rogue_sso.url + "/claims", timeout=TIMEOUT, allow_redirects=False).status_code == 302


def test_a_sound_id_token_from_the_same_provider_logs_in(rogue, rogue_sso):
    requests.post(rogue.url + "/fault", data={"fault": "none"}, timeout=TIMEOUT).raise_for_status()
    session = sso_login(rogue_sso.url + "/claims", "eve")
    assert session.get(rogue_sso.url + "/claims", timeout=TIMEOUT, allow_redirects=False).status_code == 200


def test_a_provider_that_does_not_answer_at_start_stops_the_server_with_one_line():
    issuer = f"http://127.0.0.1:{free_port()}"
    fake = Server("none", 0, None, None)  # only its url is read
    fake.port = int(issuer.rsplit(":", 1)[1])
    done = subprocess.run([str(BIN / "bokeh-flask"), "serve", str(CLAIMS_APP), "--port", str(free_port()),
                           *sso_args(fake)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [f"bokeh-flask: error: --oauth-issuer: the provider's metadata at "
                      f"{issuer}/.well-known/openid-configuration cannot be read ([Errno 111] Connection refused)"]


@pytest.fixture(scope="module")
def short_tokens() -> Iterator[Server]:
    server = start_provider(token_max_age=34)
    set_user(server, ALICE, email=ALICE, name="Alice")
    yield server
    server.stop()


def _poll_until(server: Server, session: requests.Session, done) -> requests.Response:
    """Ask for a protected page (the app's cheap metadata) until ``done(answer)``: each
    request is what makes the server look at the login's expiry."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = session.get(server.url + "/claims/metadata", timeout=TIMEOUT, allow_redirects=False)
        if done(answer):
            return answer
        assert answer.status_code == 200, answer.status_code
    raise AssertionError(f"the condition never held:\n{server.log_text()[-2000:]}")


def test_a_login_is_renewed_until_the_provider_refuses_and_a_provider_gone_is_a_502_page(short_tokens):
    """One server for a login's whole life with its provider (a server start is the cost)."""
    server = launch_sso_server(short_tokens)
    try:
        first = sso_login(server.url + "/claims", ALICE)
        renewed = f"renewed the login of {ALICE} at the provider"
        _poll_until(server, first, lambda answer: renewed in server.log_text())
        # a second login, whose grant the provider then revokes: its first renewal is refused
        # (each renewal is checked at its login's first expiry, whatever lifetime the
        # provider gives renewed tokens: oidc-provider-mock 0.3 gives them an hour)
        session = sso_login(server.url + "/claims", ALICE)
        token = page_token(session, server.url + "/claims")  # a tab open through what follows
        tab = BokehSocket(server.ws_url + "/claims/ws", token, cookie_header(session))
        requests.post(f"{short_tokens.url}/users/{ALICE}/revoke-tokens", timeout=TIMEOUT).raise_for_status()
        answer = _poll_until(server, session, lambda answer: answer.status_code == 302)
        assert "/login?next=%2Fclaims%2Fmetadata" in answer.headers["Location"]
        server.wait_for_log(f"the login of {ALICE} ended: the provider refused to renew it")
        # not a logout: the open tab keeps its session; a reconnect waits for a login, then works
        assert tab.texts()["who"] == ALICE
        assert handshake_status(server.ws_url + "/claims/ws", token, cookie_header(session))[0] == 403
        again = sso_login(server.url + "/claims", ALICE)
        assert handshake_status(server.ws_url + "/claims/ws", token, cookie_header(again))[0] == 101
        tab.close()

        short_tokens.stop()  # the provider is gone: the next login cannot start
        answer = session.get(server.url + "/login", timeout=TIMEOUT, allow_redirects=False)
        assert answer.status_code == 502
        assert page_message(answer.text) == (f"The login provider 127.0.0.1:{short_tokens.port} cannot be reached "
                                             "right now; try again in a moment.")
        server.wait_for_log("refused for 127.0.0.1: provider unreachable: ConnectionError")
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()
