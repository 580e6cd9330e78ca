"""Single sign-on against a real OpenID Connect provider (oidc-provider-mock), with requests:
the login's steps, what reaches the app and what never leaves the server, logout, who may
use the apps, and the refusals a browser's owner or another site can provoke.

One provider and one server (``bokeh-flask serve --oauth-provider oidc ...
--oauth-allow-domains example.com``) for the module; the browser flow is in
``test_oidc_browser.py``, the provider's own misbehaviour in ``test_oidc_refusals.py``.
"""
from __future__ import annotations

import json
from typing import Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from bokeh.util.token import generate_jwt_token, generate_session_id, get_token_payload

from tests.support.auth import BokehSocket, cookie_header, handshake_status, logout, page_token
from tests.support.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    COOKIE_SECRET,
    TIMEOUT,
    authorize,
    launch_sso_server,
    page_message,
    set_user,
    sso_login,
    start_login,
    start_provider,
)
from tests.support.servers import Server

ALICE = "alice@example.com"
MALLORY = "mallory@elsewhere.test"


@pytest.fixture(scope="module")
def provider() -> Iterator[Server]:
    server = start_provider()
    set_user(server, ALICE, email=ALICE, email_verified=True, name="Alice Liddell", groups=["staff"])
    set_user(server, MALLORY, email=MALLORY, email_verified=True, name="Mallory")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sso(provider) -> Iterator[Server]:
    server = launch_sso_server(provider, ["--oauth-allow-domains", "example.com"])
    yield server
    server.stop()


def test_the_authorization_request_carries_pkce_state_nonce_and_our_callback(sso, provider):
    session = requests.Session()
    location = start_login(session, sso.url + "/claims")
    assert location.startswith(provider.url + "/oauth2/authorize?")
    query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["redirect_uri"] == sso.url + "/login"
    assert set(query["scope"].split()) == {"openid", "email", "profile"}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20


def test_login_reaches_the_app_as_the_user_with_claims_kept_on_the_server(sso):
    session = sso_login(sso.url + "/claims", ALICE)
    token = page_token(session, sso.url + "/claims")
    payload = get_token_payload(token)
    assert payload["bokeh_user"] == ALICE
    text = json.dumps(payload)
    assert "Alice Liddell" not in text and "staff" not in text and "id_token" not in text
    assert "session" not in payload.get("cookies", {})  # the login cookie stays out of the token
    cookie = cookie_header(session)
    socket = BokehSocket(sso.ws_url + "/claims/ws", token, cookie)
    try:
        texts = socket.texts()
    finally:
        socket.close()
    assert (texts["who"], texts["name"], texts["groups"]) == (ALICE, "Alice Liddell", "staff")
    assert "Alice Liddell" not in cookie  # Flask's session cookie holds the login id, not the claims
    sso.wait_for_log(f"{ALICE} logged in through 127.0.0.1:")


def test_logout_ends_the_login_then_the_providers_session(sso, provider):
    session = sso_login(sso.url + "/claims", ALICE)
    saved = cookie_header(session)
    answer = logout(session, sso.url)
    assert answer.status_code == 302
    target = urlsplit(answer.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == provider.url + "/oauth2/end_session"
    query = {key: values[0] for key, values in parse_qs(target.query).items()}
    assert query["post_logout_redirect_uri"] == sso.url + "/logout"
    assert query["client_id"] == CLIENT_ID and query["id_token_hint"].count(".") == 2
    # back from the provider: a page, not the login (which would log straight back in)
    back = session.get(sso.url + "/logout", timeout=TIMEOUT, allow_redirects=False)
    assert back.status_code == 200 and page_message(back.text) == "You are logged out."
    # the cookie saved before the logout logs nobody in
    replay = requests.get(sso.url + "/claims", headers={"Cookie": saved}, allow_redirects=False, timeout=TIMEOUT)
    assert replay.status_code == 302 and "/login?next=" in replay.headers["Location"]


def test_a_user_the_rules_do_not_allow_gets_403_on_the_page_and_the_websocket(sso):
    session = sso_login(sso.url + "/claims", MALLORY)
    page = session.get(sso.url + "/claims", timeout=TIMEOUT, allow_redirects=False)
    assert page.status_code == 403
    assert f"You are logged in as <strong>{MALLORY}</strong>" in page.text and 'id="logout-button"' in page.text
    token = generate_jwt_token(generate_session_id(), extra_payload={"bokeh_user": MALLORY})
    status, body = handshake_status(sso.ws_url + "/claims/ws", token, cookie_header(session))
    assert status == 403 and "may not use this app" in body
    sso.wait_for_log(f"{MALLORY} may not use the app /claims: refused")
    assert logout(session, sso.url).status_code == 302  # the page's button works


def test_a_tampered_or_missing_state_is_refused(sso):
    session = requests.Session()
    callback = authorize(session, start_login(session, sso.url + "/claims"), ALICE)
    parts = urlsplit(callback)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    for broken in ({**query, "state": query["state"][:-2] + "xx"}, {"code": query["code"]}):
        answer = session.get(sso.url + "/login", params=broken, timeout=TIMEOUT, allow_redirects=False)
        assert answer.status_code == 400, answer.text[:300]
        assert page_message(answer.text) == "This login was not started in this browser, or it was already used."
    sso.wait_for_log("refused for 127.0.0.1: state missing or not this browser's")


def test_a_code_is_good_once_and_for_the_browser_that_asked(sso):
    victim = requests.Session()
    callback = authorize(victim, start_login(victim, sso.url + "/claims"), ALICE)
    assert victim.get(callback, timeout=TIMEOUT, allow_redirects=False).status_code == 302
    # the same callback again (a replay from the history): its state is used up
    assert victim.get(callback, timeout=TIMEOUT, allow_redirects=False).status_code == 400
    # the code under a login the attacker started: the provider refuses it (used, and not
    # for the attacker's PKCE verifier)
    attacker = requests.Session()
    own = authorize(attacker, start_login(attacker, sso.url + "/claims"), MALLORY)
    own_state = parse_qs(urlsplit(own).query)["state"][0]
    stolen = parse_qs(urlsplit(callback).query)["code"][0]
    answer = attacker.get(sso.url + "/login", params={"code": stolen, "state": own_state}, timeout=TIMEOUT,
                          allow_redirects=False)
    assert answer.status_code == 400 and "refused the login (invalid_grant)" in page_message(answer.text)
    sso.wait_for_log("OAuthError: invalid_grant")


def test_the_provider_saying_no_is_a_403_page(sso):
    session = requests.Session()
    location = start_login(session, sso.url + "/claims")
    answer = session.post(location, data={"action": "deny"}, allow_redirects=False, timeout=TIMEOUT)
    refused = session.get(urljoin(sso.url, answer.headers["Location"]), timeout=TIMEOUT, allow_redirects=False)
    assert refused.status_code == 403 and "did not log you in" in page_message(refused.text)


def test_a_login_without_the_user_claim_is_a_403_page(sso, provider):
    set_user(provider, "nomail", name="No Mail")  # no email claim, in the ID token or userinfo
    session = requests.Session()
    callback = authorize(session, start_login(session, sso.url + "/claims"), "nomail")
    answer = session.get(callback, timeout=TIMEOUT, allow_redirects=False)
    assert answer.status_code == 403
    assert page_message(answer.text) == f"127.0.0.1:{provider.port} did not say who you are (no 'email' claim)."
    sso.wait_for_log("no 'email' claim (claims: ")


def test_the_secrets_are_in_no_command_line_and_no_log_line(sso):
    sso_login(sso.url + "/claims", ALICE)
    for pid in (sso.process.pid, *sso.worker_pids()):
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command = file.read().decode()
        assert CLIENT_SECRET not in command and COOKIE_SECRET not in command
    log = sso.log_text()
    assert CLIENT_SECRET not in log and COOKIE_SECRET not in log
    assert "code_verifier" not in log and "id_token_hint" not in log
