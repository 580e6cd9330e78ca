"""Logging in with a real browser (Debian chromium through Playwright): the standalone
Flask-Login provider (gunicorn and flask run), two users at once, a host Flask app with its
own Flask-Login, Bokeh's example auth module through the CLI, and a url_prefix mount.

The app (``apps/whoami.py``, or ``examples/auth/hello_user.py`` for the host app) writes
what its Python code sees (``session_context.user``, ``logout_url``) into Paragraph
models; the tests read them from BokehJS, so they arrived over the websocket.
"""
from __future__ import annotations

import re

import pytest

from tests.support.auth import browser_login, browser_logout, model_text, wait_for_text

pytestmark = pytest.mark.browser


def _sockets(page) -> list:
    sockets: list = []
    page.on("websocket", lambda ws: sockets.append(ws))
    return sockets


def test_login_shows_the_app_with_its_user_and_logout_closes_the_session(login_server, page):
    base = login_server.url
    sockets = _sockets(page)
    page.goto(base + "/whoami")
    assert page.url == base + "/login?next=%2Fwhoami"  # anonymous: sent to the login page
    browser_login(page, "alice")
    page.wait_for_url(base + "/whoami")
    wait_for_text(page, "who", "alice")
    assert model_text(page, "token_user") == "alice"
    assert model_text(page, "logout_url") == "/logout"
    app_socket = next(ws for ws in sockets if ws.url.endswith("/whoami/ws"))
    assert not app_socket.is_closed()

    # log out from another tab of the same browser: the open page's websocket is closed
    other = page.context.new_page()
    other.goto(base + "/logout")
    assert other.locator("h1").inner_text() == "Log out alice?"  # a GET only asks
    assert not app_socket.is_closed()
    with app_socket.expect_event("close"):
        other.click("#logout-button")
    other.wait_for_url(base + "/login")
    login_server.wait_for_log("user 'alice' logged out: ended")
    page.goto(base + "/whoami")
    assert page.url == base + "/login?next=%2Fwhoami"


def test_two_users_at_once_each_see_their_own_identity(login_server, browser):
    base = login_server.url
    pages = {}
    try:
        for name in ("alice", "bob"):
            context = browser.new_context()
            page = context.new_page()
            page.goto(base + "/whoami")
            browser_login(page, name)
            page.wait_for_url(base + "/whoami")
            pages[name] = page
        for name, page in pages.items():
            wait_for_text(page, "who", name)
            assert model_text(page, "token_user") == name
        # both sessions are live in the worker at the same time
        for name, page in pages.items():
            page.reload()
            wait_for_text(page, "who", name)
    finally:
        for page in pages.values():
            page.context.close()


def test_host_app_flask_login_guards_the_mounted_app(host_app_server, page):
    base = host_app_server.url
    sockets = _sockets(page)
    page.goto(base + "/bokeh/hello")
    # the host's login view, with next pointing back at the mounted app
    assert page.url == base + "/login?next=%2Fbokeh%2Fhello"
    browser_login(page, "bob", "builder")
    page.wait_for_url(base + "/bokeh/hello")
    wait_for_text(page, "greeting", "Hello, bob!")

    # the host's own page embeds the app with server_document; the same login applies
    page.goto(base + "/")
    assert page.locator("h1").inner_text() == "Welcome, Bob"
    wait_for_text(page, "greeting", "Hello, bob!")
    assert any(ws.url.endswith("/bokeh/hello/ws") for ws in sockets), "the embedded app never connected"

    # the app's logout button goes to the host's logout page; confirming ends bob's login
    # and his Bokeh sessions
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(base + "/logout")
    page.click("#logout-button")
    page.wait_for_url(base + "/login")
    host_app_server.wait_for_log("user 'bob' logged out: ended")
    # the server, not the navigation, ended bob's sessions: at least the embedded one
    ended = re.findall(r"user 'bob' logged out: ended (\d+) sessions", host_app_server.log_text())
    assert ended and int(ended[-1]) >= 1, ended


def test_bokehs_example_auth_module_unchanged(bokeh_example_server, page):
    base = bokeh_example_server.url
    page.goto(base + "/whoami")
    assert page.url == base + "/login?next=%2Fwhoami"
    assert "Login to access your application" in page.content()
    page.fill("input[name=username]", "bokeh")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/login?error=Login+incorrect")
    assert page.locator(".errormessage").inner_text() == "Login incorrect"
    page.fill("input[name=username]", "bokeh")
    page.fill("input[name=password]", "bokeh")
    page.click("button[type=submit]")  # the form carries Tornado's _xsrf field
    page.wait_for_url(base + "/whoami")  # LoginHandler redirects to /, the index to the app
    # the example's get_user returns its cookie: json_encode("bokeh")
    wait_for_text(page, "who", '"bokeh"')
    assert model_text(page, "logout_url") == "/logout"
    page.goto(base + "/logout")
    assert page.url == base + "/login?next=%2F"


def test_url_prefix_mount_and_prefix_in_every_login_and_logout_url(mounted_login_server, page):
    base = mounted_login_server.url
    page.goto(base + "/mnt/pre/whoami")
    assert page.url == base + "/mnt/pre/login?next=%2Fmnt%2Fpre%2Fwhoami"
    browser_login(page, "bob")
    page.wait_for_url(base + "/mnt/pre/whoami")
    wait_for_text(page, "who", "bob")
    assert model_text(page, "logout_url") == "/mnt/pre/logout"
    browser_logout(page, base + "/mnt/pre/logout")
    page.wait_for_url(base + "/mnt/pre/login")
    page.goto(base + "/mnt/pre/")
    assert page.url == base + "/mnt/pre/login?next=%2Fmnt%2Fpre%2F"
