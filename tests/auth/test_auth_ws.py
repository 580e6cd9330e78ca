"""Sessions belong to users (standalone Flask-Login provider, under gunicorn and flask run).

The websocket handshake runs the auth step before the upgrade: an anonymous handshake, a
token minted for another user, or another user's live session is refused with 403 and
never upgrades. Logging out closes the user's websockets (4000) and expires the sessions.
"""
from __future__ import annotations

import requests
from bokeh.util.token import generate_jwt_token, generate_session_id, get_session_id

from tests.support.auth import TIMEOUT, BokehSocket, cookie_header, handshake_status, login, logout, page_token
from tests.support.bokeh_version import embed_path


def test_anonymous_websocket_refused_before_upgrade(login_server):
    server = login_server
    token = page_token(login(server.url, "alice"), server.url + "/whoami")
    status, body = handshake_status(server.ws_url + "/whoami/ws", token)
    assert status == 403, body
    assert "no authenticated user" in body


def test_websocket_with_other_users_cookie_refused(login_server):
    server = login_server
    alice, bob = login(server.url, "alice"), login(server.url, "bob")
    token = page_token(alice, server.url + "/whoami")
    status, body = handshake_status(server.ws_url + "/whoami/ws", token, cookie_header(bob))
    assert status == 403, body
    assert "another user" in body
    # the owner's own cookie upgrades, and the app code saw the owner
    ws = BokehSocket(server.ws_url + "/whoami/ws", token, cookie_header(alice))
    try:
        texts = ws.texts()
    finally:
        ws.close()
    assert texts["who"] == texts["token_user"] == "alice"


def test_other_users_live_session_cannot_be_joined_or_claimed(login_server):
    """With authentication on, a session id names a session among the asking user's own:
    bob naming alice's id (by page request or a client-made token) meets a session of his
    own, and alice's stays hers, in this worker or any other."""
    server = login_server
    alice, bob = login(server.url, "alice"), login(server.url, "bob")
    token = page_token(alice, server.url + "/whoami")
    session_id = get_session_id(token)
    ws = BokehSocket(server.ws_url + "/whoami/ws", token, cookie_header(alice))
    try:
        alices = ws.texts()
        assert alices["who"] == "alice"
        # by page request naming the session id ...
        bobs_token = page_token(bob, server.url + f"/whoami?bokeh-session-id={session_id}")
        assert get_session_id(bobs_token) == session_id
        other = BokehSocket(server.ws_url + "/whoami/ws", bobs_token, cookie_header(bob))
        try:
            bobs = other.texts()
        finally:
            other.close()
        assert bobs["who"] == "bob" and bobs["nonce"] != alices["nonce"]
        # ... or by a client-made token (no user in it) for the same id
        forged = generate_jwt_token(session_id)
        other = BokehSocket(server.ws_url + "/whoami/ws", forged, cookie_header(bob))
        try:
            assert other.texts()["nonce"] == bobs["nonce"]
        finally:
            other.close()
        # alice's token with bob's cookie is refused
        status, body = handshake_status(server.ws_url + "/whoami/ws", token, cookie_header(bob))
        assert status == 403 and "another user" in body, body
        # an expired token may re-attach to a live session only within its user's own
        expired = generate_jwt_token(session_id, expiration=-10)
        status, body = handshake_status(server.ws_url + "/whoami/ws", expired, cookie_header(alice))
        assert status == 101, body
        status, body = handshake_status(server.ws_url + "/whoami/ws", expired)
        assert status == 403 and "no authenticated user" in body, body
        assert ws.texts()["nonce"] == alices["nonce"]  # alice's session is untouched
    finally:
        ws.close()


def test_websocket_built_session_takes_the_websocket_user(login_server):
    """A token minted elsewhere (bokeh.client style, no page request here): the session
    is built from the websocket request, whose login cookie names the user."""
    server = login_server
    bob = login(server.url, "bob")
    token = generate_jwt_token(generate_session_id())
    ws = BokehSocket(server.ws_url + "/whoami/ws", token, cookie_header(bob))
    try:
        texts = ws.texts()
    finally:
        ws.close()
    assert texts["who"] == "bob" and texts["token_user"] == "None"


def test_logout_closes_that_users_websockets_only(login_server):
    server = login_server
    alice, bob = login(server.url, "alice"), login(server.url, "bob")
    alice_ws = [BokehSocket(server.ws_url + "/whoami/ws", page_token(alice, server.url + "/whoami"),
                            cookie_header(alice)) for _ in range(2)]
    bob_ws = BokehSocket(server.ws_url + "/whoami/ws", page_token(bob, server.url + "/whoami"),
                         cookie_header(bob))
    try:
        offset = len(server.log_text())
        out = logout(alice, server.url)
        assert out.status_code == 302 and out.headers["Location"] == "/login"
        for ws in alice_ws:
            assert ws.wait_closed() == (4000, "the user logged out")
        # (alice's sessions from earlier tests end too: every session of the user)
        server.wait_for_log("user 'alice' logged out: ended")
        assert "user 'bob'" not in server.log_text()[offset:]
        assert bob_ws.texts()["who"] == "bob"  # still served
        # alice is anonymous again
        again = alice.get(server.url + "/whoami", timeout=TIMEOUT, allow_redirects=False)
        assert again.status_code == 302 and again.headers["Location"] == "/login?next=%2Fwhoami"
    finally:
        for ws in [*alice_ws, bob_ws]:
            ws.close()


def test_token_payload_names_the_user(login_server):
    server = login_server
    token = page_token(login(server.url, "bob"), server.url + "/whoami")
    from bokeh.util.token import get_token_payload

    assert get_token_payload(token)["bokeh_user"] == "bob"


def test_login_form_post_without_csrf_token_is_refused(login_server):
    session = requests.Session()
    session.get(login_server.url + "/login", timeout=TIMEOUT)  # has a session, not the token
    answer = session.post(login_server.url + "/login", allow_redirects=False, timeout=TIMEOUT,
                          data={"username": "alice", "password": "alice-pw"})
    assert answer.status_code == 400
    assert "CSRF token is missing or invalid" in answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    wrong = session.post(login_server.url + "/login", allow_redirects=False, timeout=TIMEOUT,
                         data={"username": "alice", "password": "alice-pw", "csrf_token": "forged"})
    assert wrong.status_code == 400


def test_wrong_password_shows_the_form_again(login_server):
    session = requests.Session()
    form = session.get(login_server.url + "/login", timeout=TIMEOUT).text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    answer = session.post(login_server.url + "/login", timeout=TIMEOUT, allow_redirects=False,
                          data={"username": "alice", "password": "nope", "csrf_token": token})
    assert answer.status_code == 401 and "Wrong username or password." in answer.text
    assert session.get(login_server.url + "/whoami", timeout=TIMEOUT,
                       allow_redirects=False).status_code == 302


def test_next_must_stay_on_site(login_server):
    session = requests.Session()
    form = session.get(login_server.url + "/login", timeout=TIMEOUT).text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    answer = session.post(login_server.url + "/login", timeout=TIMEOUT, allow_redirects=False,
                          data={"username": "alice", "password": "alice-pw", "csrf_token": token,
                                "next": "https://evil.example.com/"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_protected_and_public_routes_for_anonymous(login_server):
    def get(path: str) -> requests.Response:
        return requests.get(login_server.url + path, timeout=TIMEOUT, allow_redirects=False)

    assert get("/whoami?a=1&b=2").headers["Location"] == "/login?next=%2Fwhoami%3Fa%3D1%26b%3D2"
    assert get("/whoami/metadata").headers["Location"] == "/login?next=%2Fwhoami%2Fmetadata"
    autoload = get(embed_path("/whoami"))
    assert autoload.status_code == 302 and autoload.headers["Location"].startswith("/login?next=")
    assert get("/").headers["Location"] == "/login?next=%2F"
    # static files and the favicon stay public; the login page itself is not protected
    assert get("/static/js/bokeh.min.js").status_code == 200
    assert get("/favicon.ico").status_code == 200
    assert get("/login").status_code == 200
    # a websocket route without a user is 403, not a redirect
    assert requests.get(login_server.url + "/whoami/ws", timeout=TIMEOUT, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "bokeh, x",
    }).status_code == 403


def test_a_session_ended_by_a_logout_never_serves_again(login_server):
    """Not after the same user logs in again, and not to a token that re-attaches: the
    session lives on until the cleanup job's next pass, ended."""
    server = login_server
    bob_session = login(server.url, "bob")
    old = page_token(bob_session, server.url + "/whoami")
    ws = BokehSocket(server.ws_url + "/whoami/ws", old, cookie_header(bob_session))
    try:
        assert logout(bob_session, server.url).status_code == 302
        assert ws.wait_closed() == (4000, "the user logged out")
    finally:
        ws.close()
    again = login(server.url, "bob")
    status, body = handshake_status(server.ws_url + "/whoami/ws", old, cookie_header(again))
    assert status == 403 and "ended when its user logged out" in body, body
    expired = generate_jwt_token(get_session_id(old), expiration=-10, extra_payload={"bokeh_user": "bob"})
    status, body = handshake_status(server.ws_url + "/whoami/ws", expired, cookie_header(again))
    assert status == 403 and "ended when its user logged out" in body, body
    answer = again.get(server.url + "/whoami", params={"bokeh-token": old}, timeout=TIMEOUT)
    assert answer.status_code == 403, answer.text[:300]
    fresh = page_token(again, server.url + "/whoami")  # a new page works at once
    ws = BokehSocket(server.ws_url + "/whoami/ws", fresh, cookie_header(again))
    try:
        assert ws.texts()["who"] == "bob"
    finally:
        ws.close()
