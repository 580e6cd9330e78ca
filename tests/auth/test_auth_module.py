"""``bokeh serve``-style auth modules through ``bokeh-flask serve --auth-module``.

Bokeh's own example module (``apps/server_auth``, unchanged) runs with
``--enable-xsrf-cookies --cookie-secret``: its Tornado LoginHandler renders its template
with ``xsrf_form_html()``, refuses a POST without the token, sets its cookie, and its
LogoutHandler ends the user's sessions. A second module uses ``get_user_async`` and
Tornado signed cookies under ``--prefix``. Invalid modules stop the CLI with exit code 2
and one line.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest
import requests

from tests.support.auth import COOKIE_SECRET, SIGNED_AUTH, TIMEOUT, WHOAMI, BokehSocket, cookie_header, page_token
from tests.support.servers import BIN, free_port, launch

XSRF_RE = re.compile(r'name="_xsrf" value="([^"]+)"')

BAD_MODULES = {
    "both-user-functions": (
        "def get_user(h): return 'u'\nasync def get_user_async(h): return 'u'\nlogin_url = '/login'\n",
        "Only one of get_user or get_user_async should be supplied"),
    "no-login-url": ("def get_user(h): return 'u'\n",
                     "one of login_url or get_login_url must be supplied"),
    "login-handler-with-get-login-url": (
        "from tornado.web import RequestHandler\ndef get_user(h): return 'u'\n"
        "def get_login_url(h): return '/x'\nclass LoginHandler(RequestHandler): pass\n",
        "LoginHandler cannot be used with a get_login_url() function"),
    "login-handler-not-a-request-handler": (
        "def get_user(h): return 'u'\nlogin_url = '/login'\nclass LoginHandler: pass\n",
        "LoginHandler must be a subclass of tornado.web.RequestHandler"),
    "absolute-login-url": ("def get_user(h): return 'u'\nlogin_url = 'https://sso.example.com/'\n",
                           "login_url must be a relative URL"),
    "syntax-error": ("def get_user(h) return 'u'\n", "failed to load: SyntaxError"),
}


@pytest.mark.parametrize("case", list(BAD_MODULES))
def test_invalid_auth_module_exits_2_with_one_line(case, tmp_path):
    source, needle = BAD_MODULES[case]
    module = tmp_path / "auth.py"
    module.write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    result = subprocess.run(
        [str(BIN / "bokeh-flask"), "serve", str(WHOAMI), "--auth-module", str(module),
         "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"bokeh-flask: error: auth module {module}"), lines[0]
    assert needle in lines[0], lines[0]


# -- Bokeh's example module, unchanged ------------------------------------------------------

def _login_as_bokeh(base: str, password: str = "bokeh") -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    form = session.get(base + "/login", timeout=TIMEOUT)
    xsrf = XSRF_RE.search(form.text).group(1)
    answer = session.post(base + "/login", allow_redirects=False, timeout=TIMEOUT, data={
        "_xsrf": xsrf, "username": "bokeh", "password": password})
    return session, answer


def test_example_module_redirects_renders_and_checks_xsrf(bokeh_example_server):
    base = bokeh_example_server.url
    anonymous = requests.get(base + "/whoami?a=1", timeout=TIMEOUT, allow_redirects=False)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/login?next=%2Fwhoami%3Fa%3D1"
    form = requests.get(base + "/login", timeout=TIMEOUT)
    assert form.status_code == 200 and "Login to access your application" in form.text
    assert XSRF_RE.search(form.text) and "_xsrf=" in form.headers["Set-Cookie"]
    # XSRF: a POST without the token is Tornado's 403
    refused = requests.post(base + "/login", data={"username": "bokeh", "password": "bokeh"},
                            timeout=TIMEOUT, allow_redirects=False)
    assert refused.status_code == 403 and "user=" not in refused.headers.get("Set-Cookie", "")
    _, wrong = _login_as_bokeh(base, password="nope")
    assert wrong.status_code == 302 and wrong.headers["Location"] == "/login?error=Login+incorrect"
    session, answer = _login_as_bokeh(base)
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    # the root redirects to the only app, which now serves the page
    page = session.get(base + "/", timeout=TIMEOUT)
    assert page.status_code == 200 and page.url == base + "/whoami"


def test_example_module_user_reaches_the_app_and_logout_ends_it(bokeh_example_server):
    server = bokeh_example_server
    _, answer = _login_as_bokeh(server.url)
    # send the cookie as a browser does: verbatim (requests' cookie jar strips its quotes)
    cookie = answer.headers["Set-Cookie"].split(";")[0]
    token = page_token(requests.Session(), server.url + "/whoami", cookie)
    ws = BokehSocket(server.ws_url + "/whoami/ws", token, cookie)
    try:
        texts = ws.texts()
        # get_user returns the cookie the example sets: json_encode("bokeh") == '"bokeh"'
        assert texts["who"] == texts["token_user"] == '"bokeh"'
        assert texts["logout_url"] == "/logout"
        out = requests.get(server.url + "/logout", headers={"Cookie": cookie}, timeout=TIMEOUT,
                           allow_redirects=False)
        assert out.status_code == 302 and out.headers["Location"] == "/"
        assert out.headers["Set-Cookie"].startswith('user=""; expires=')
        assert ws.wait_closed() == (4000, "the user logged out")
    finally:
        ws.close()


# -- get_user_async, signed cookies and --prefix ------------------------------------------------

@pytest.fixture(scope="module")
def signed_prefixed_server():
    server = launch("cli", apps=[WHOAMI], args=[
        "--auth-module", str(SIGNED_AUTH), "--cookie-secret", COOKIE_SECRET, "--prefix", "/pre"],
        wait_path="/pre/signin")
    yield server
    server.stop()


def test_prefix_applies_to_login_and_logout_urls(signed_prefixed_server):
    server = signed_prefixed_server

    def get(path: str, session: requests.Session | None = None) -> requests.Response:
        return (session or requests).get(server.url + path, timeout=TIMEOUT, allow_redirects=False)

    assert get("/pre/whoami").headers["Location"] == "/pre/signin?next=%2Fpre%2Fwhoami"
    assert get("/pre/").headers["Location"] == "/pre/signin?next=%2Fpre%2F"
    assert get("/pre/signin").status_code == 200
    assert get("/signin").status_code == 404 and get("/signout").status_code == 404

    session = requests.Session()
    signed_in = session.post(server.url + "/pre/signin", data={"name": "carol", "next": "/pre/whoami"},
                             timeout=TIMEOUT, allow_redirects=False)
    assert signed_in.headers["Location"] == "/pre/whoami"
    assert session.cookies["signed_user"].startswith('"2|')  # Tornado's signed-value format
    # a forged, unsigned cookie is nobody
    assert requests.get(server.url + "/pre/whoami", cookies={"signed_user": "carol"}, timeout=TIMEOUT,
                        allow_redirects=False).status_code == 302

    token = page_token(session, server.url + "/pre/whoami")
    ws = BokehSocket(server.ws_url + "/pre/whoami/ws", token, cookie_header(session))
    try:
        texts = ws.texts()
        assert texts["who"] == "carol" and texts["logout_url"] == "/pre/signout"
        assert get("/pre/signout", session).text == "signed out"
        assert ws.wait_closed() == (4000, "the user logged out")
    finally:
        ws.close()
