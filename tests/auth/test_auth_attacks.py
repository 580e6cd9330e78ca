"""Authentication from the attacker's side (issue 14), one test per attack, against the
standalone Flask-Login provider under gunicorn's gevent worker (two workers where the attack
crosses workers):

1. the login cookie read out of a session token (another origin's script, a page script);
2. a login cookie replayed after logout, on the other worker, and a token minted before;
3. cookies without SameSite/Secure/Path;
4. a cross-site logout (a GET of the logout URL, a POST without the CSRF token);
5. a session id claimed in another worker;
6. a newline in ``next``;
7. password guessing, framing of the login page, the cookie secret in ``ps``.
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import requests
from bokeh.util.token import get_session_id, get_token_payload

from tests.support.auth import (
    LOGIN_SERVER,
    TIMEOUT,
    USERS,
    BokehSocket,
    cookie_header,
    handshake_status,
    launch_flask_app,
    login,
    logout,
    page_token,
)
from tests.support.bokeh_version import embed_path
from tests.support.servers import APPS as APPS_DIR
from tests.support.servers import launch


@pytest.fixture(scope="module")
def two_workers():
    server = launch_flask_app(LOGIN_SERVER, "gunicorn", workers=2)
    yield server
    server.stop()


def statuses(get, tries: int = 24) -> set[int]:
    """The statuses of ``get()`` over that many fresh connections (two workers share the
    listening socket, so both answer some of them)."""
    return {get().status_code for _ in range(tries)}


# -- 1. no login in a token -------------------------------------------------------------------

def test_session_token_carries_no_login_cookie_nor_cookie_header(two_workers):
    alice = login(two_workers.url, "alice")
    alice.cookies.set("theme", "dark")
    token = page_token(alice, two_workers.url + "/whoami")
    payload = get_token_payload(token)
    assert payload["bokeh_user"] == "alice"
    # the page's cookies and headers are kept on the server, not in the token
    assert not {"cookies", "headers"} & payload.keys() and len(token) < 1024
    login_cookie = alice.cookies.get("session")
    assert login_cookie and login_cookie not in json.dumps(payload)
    # what a script on the page could read is no login: replayed, it is anonymous
    stolen = "theme=dark"
    page = requests.get(two_workers.url + "/whoami", headers={"Cookie": stolen}, timeout=TIMEOUT,
                        allow_redirects=False)
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_another_origin_cannot_read_autoload_with_the_users_cookies(two_workers, browser):
    """A page on another port of the same host (same site: the login cookie goes along)
    fetches autoload.js with credentials: the browser gets no CORS grant, so the script,
    its token and the login in it stay unreadable."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(two_workers.url + "/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", USERS["alice"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)  # logged in: the index sends on to the app

    evil = launch("gunicorn", apps=[APPS_DIR / "hello.py"])  # any other origin
    try:
        page.goto(evil.url + "/hello")
        target = two_workers.url + embed_path("/whoami")
        outcome = page.evaluate("""async (url) => {
            try { const r = await fetch(url, {credentials: "include"});
                  return "read: " + (await r.text()).slice(0, 40); }
            catch (e) { return "blocked: " + e; } }""", target)
        assert outcome.startswith("blocked"), outcome
    finally:
        evil.stop()
        context.close()


# -- 2. logout ends the login everywhere -------------------------------------------------------

def test_cookie_replayed_after_logout_is_refused_on_every_worker(two_workers):
    alice = login(two_workers.url, "alice")
    saved = cookie_header(alice)
    token = page_token(alice, two_workers.url + "/whoami")
    assert handshake_status(two_workers.ws_url + "/whoami/ws", token, saved)[0] == 101
    out = logout(alice, two_workers.url)
    assert out.status_code == 302

    def replay():
        return requests.get(two_workers.url + "/whoami", headers={"Cookie": saved}, timeout=TIMEOUT,
                            allow_redirects=False)

    assert statuses(replay) == {302}
    for _ in range(6):  # a token minted before the logout, with the saved cookie
        status, body = handshake_status(two_workers.ws_url + "/whoami/ws", token, saved)
        assert status == 403 and "no authenticated user" in body, body


def test_logout_on_one_host_ends_the_login_on_another(redis_url):
    """Two servers (hosts) behind one proxy share a Redis login store: a login works on
    both, and its logout on one refuses the saved cookie on the other."""
    env = {"BOKEH_LOGIN_STORE": redis_url}
    first, second = (launch_flask_app(LOGIN_SERVER, "gunicorn", env=env) for _ in range(2))
    try:
        alice = login(first.url, "alice")
        saved = {"Cookie": cookie_header(alice)}
        assert requests.get(second.url + "/whoami", headers=saved, timeout=TIMEOUT,
                            allow_redirects=False).status_code == 200
        logout(alice, first.url)
        assert requests.get(second.url + "/whoami", headers=saved, timeout=TIMEOUT,
                            allow_redirects=False).status_code == 302
    finally:
        first.stop()
        second.stop()


def test_remember_me_cookie_replayed_after_logout_is_refused(two_workers):
    session = requests.Session()
    form = session.get(two_workers.url + "/login", timeout=TIMEOUT).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    session.post(two_workers.url + "/login", allow_redirects=False, timeout=TIMEOUT, data={
        "csrf_token": csrf, "username": "bob", "password": USERS["bob"], "remember": "yes"})
    remember = session.cookies.get("remember_token")
    assert remember, session.cookies
    # the browser was closed (no session cookie): the remember-me cookie logs bob in
    alone = {"Cookie": f"remember_token={remember}"}
    assert requests.get(two_workers.url + "/whoami", headers=alone, timeout=TIMEOUT,
                        allow_redirects=False).status_code == 200
    logout(session, two_workers.url)
    assert statuses(lambda: requests.get(two_workers.url + "/whoami", headers=alone, timeout=TIMEOUT,
                                         allow_redirects=False)) == {302}


def test_host_app_refuses_a_login_cookie_replayed_after_logout():
    """examples/auth/host_app.py with two workers: after the host's logout, the saved
    cookie opens neither the host's own page nor the mounted Bokeh app."""
    from tests.support.servers import EXAMPLES

    server = launch_flask_app(EXAMPLES / "auth" / "host_app.py", "gunicorn", workers=2,
                              env={"SECRET_KEY": "host-secret-" + "y" * 20})
    try:
        session = requests.Session()
        session.post(server.url + "/login", data={"username": "alice", "password": "wonderland"},
                     timeout=TIMEOUT, allow_redirects=False)
        saved = cookie_header(session)
        assert session.get(server.url + "/", timeout=TIMEOUT).status_code == 200
        confirm = session.get(server.url + "/logout", timeout=TIMEOUT)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', confirm.text).group(1)
        assert session.post(server.url + "/logout", data={"csrf_token": csrf}, timeout=TIMEOUT,
                            allow_redirects=False).status_code == 302
        for path in ("/", "/bokeh/hello"):
            assert statuses(lambda: requests.get(server.url + path, headers={"Cookie": saved},
                                                 timeout=TIMEOUT, allow_redirects=False)) == {302}
    finally:
        server.stop()


# -- 3. cookie flags ---------------------------------------------------------------------------

def _login_set_cookie(base: str) -> str:
    session = requests.Session()
    form = session.get(base + "/login", timeout=TIMEOUT).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = session.post(base + "/login", allow_redirects=False, timeout=TIMEOUT,
                          data={"csrf_token": csrf, "username": "alice", "password": USERS["alice"]})
    assert answer.status_code == 302
    return answer.headers["Set-Cookie"]


def test_login_cookie_flags(two_workers):
    cookie = _login_set_cookie(two_workers.url)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP


def test_login_cookie_is_secure_behind_a_tls_proxy_and_scoped_to_the_prefix():
    server = launch_flask_app(LOGIN_SERVER, "gunicorn", env={
        "AUTH_TEST_URL_PREFIX": "/mnt", "AUTH_TEST_PREFIX": "/pre", "BOKEH_USE_XHEADERS": "yes"})
    try:
        # the login form's answer already sets the session cookie (its CSRF token); being
        # Secure, a client on plain HTTP would not even send it back
        form = requests.get(server.url + "/mnt/pre/login", headers={"X-Forwarded-Proto": "https"},
                            timeout=TIMEOUT)
        cookie = form.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/mnt/pre" in cookie
        assert "SameSite=Lax" in cookie
        plain = requests.get(server.url + "/mnt/pre/login", timeout=TIMEOUT)
        assert "Secure" not in plain.headers["Set-Cookie"]
    finally:
        server.stop()


# -- 4. logout only on purpose -----------------------------------------------------------------

def test_no_cross_site_logout(two_workers):
    alice = login(two_workers.url, "alice")
    # a link or <img> on another site: a GET only shows the confirmation page
    confirm = alice.get(two_workers.url + "/logout", timeout=TIMEOUT, allow_redirects=False)
    assert confirm.status_code == 200 and "Log out alice?" in confirm.text
    # a form on another site posts without the CSRF token
    forged = alice.post(two_workers.url + "/logout", headers={"Origin": "https://evil.example"},
                        timeout=TIMEOUT, allow_redirects=False)
    assert forged.status_code == 400
    assert alice.get(two_workers.url + "/whoami", timeout=TIMEOUT, allow_redirects=False).status_code == 200


# -- 5. session ids cannot be claimed ----------------------------------------------------------

def test_claimed_session_id_blocks_nobody_in_any_worker(two_workers):
    alice, bob = login(two_workers.url, "alice"), login(two_workers.url, "bob")
    token = page_token(alice, two_workers.url + "/whoami")
    session_id = get_session_id(token)
    for _ in range(8):  # bob claims alice's id, reaching both workers
        claimed = page_token(bob, two_workers.url + f"/whoami?bokeh-session-id={session_id}")
        assert get_token_payload(claimed)["bokeh_user"] == "bob"
    for _ in range(8):  # alice's websockets still open, on whichever worker they land
        ws = BokehSocket(two_workers.ws_url + "/whoami/ws", token, cookie_header(alice))
        try:
            assert ws.texts()["who"] == "alice"
        finally:
            ws.close()


# -- 6. a bad next ------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/x\r\nSet-Cookie: injected=1", "/x\x00y", "//evil.example/",
                                    "https://evil.example/", "/\\evil.example", "/ok path"])
def test_bad_next_falls_back_to_a_local_page(two_workers, target):
    session = requests.Session()
    form = session.get(two_workers.url + "/login", timeout=TIMEOUT).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = session.post(two_workers.url + "/login", allow_redirects=False, timeout=TIMEOUT, data={
        "csrf_token": csrf, "username": "alice", "password": USERS["alice"], "next": target})
    assert answer.status_code == 302, answer.status_code
    assert answer.headers["Location"] == "/"
    assert "injected" not in answer.headers.get("Set-Cookie", "")
    assert "Traceback" not in two_workers.log_text()


# -- 7. login hardening ------------------------------------------------------------------------

def test_password_guessing_is_throttled_per_user_and_client():
    server = launch_flask_app(LOGIN_SERVER, "gunicorn", workers=2)
    try:
        session = requests.Session()
        statuses = []
        for attempt in range(6):
            form = session.get(server.url + "/login", timeout=TIMEOUT).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            answer = session.post(server.url + "/login", allow_redirects=False, timeout=TIMEOUT, data={
                "csrf_token": csrf, "username": "alice", "password": f"guess-{attempt}"})
            statuses.append(answer.status_code)
        assert statuses == [401] * 5 + [429]
        assert 1 <= int(answer.headers["Retry-After"]) <= 301
        # from this address, the right password does not get through either (other
        # addresses: test_login_throttle.py)
        form = session.get(server.url + "/login", timeout=TIMEOUT).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        answer = session.post(server.url + "/login", allow_redirects=False, timeout=TIMEOUT, data={
            "csrf_token": csrf, "username": "alice", "password": USERS["alice"]})
        assert answer.status_code == 429
    finally:
        server.stop()


def test_login_and_logout_pages_cannot_be_framed_or_cached(two_workers):
    alice = login(two_workers.url, "alice")
    for page in (requests.get(two_workers.url + "/login", timeout=TIMEOUT),
                 alice.get(two_workers.url + "/logout", timeout=TIMEOUT)):
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["Cache-Control"] == "no-store"


def test_cookie_secret_from_a_file_shows_in_no_command_line(tmp_path):
    secret_file = tmp_path / "cookie-secret"
    secret_file.write_text("file-secret-" + "q" * 30 + "\n")
    server = launch("cli", apps=[APPS_DIR / "hello.py"], args=[
        "--auth-module", str(APPS_DIR.parent / "auth" / "apps" / "signed_auth.py"),
        "--cookie-secret-file", str(secret_file)])
    try:
        commands = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert "file-secret-" not in commands
        assert requests.get(server.url + "/hello", timeout=TIMEOUT, allow_redirects=False).status_code in (200, 302)
    finally:
        server.stop()
