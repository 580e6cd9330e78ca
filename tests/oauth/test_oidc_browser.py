"""Single sign-on in Debian chromium against oidc-provider-mock: the whole flow (login at
the provider's form, the app showing the user, a widget round trip, logout here and at the
provider, a user the rules refuse) on ``bokeh-flask serve --workers 2 --prefix /pre``, and
a host app with a rule per app and a hook (``apps/sso_host_app.py``).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest
import requests

from tests.support.auth import BokehSocket, launch_flask_app, page_token, wait_for_text
from tests.support.oidc import (
    CLIENT_SECRET,
    COOKIE_SECRET,
    OAUTH_APPS,
    TIMEOUT,
    launch_sso_server,
    set_user,
    sso_login,
    start_provider,
)
from tests.support.servers import Server

pytestmark = pytest.mark.browser

ALICE = "alice@example.com"


@pytest.fixture(scope="module")
def provider() -> Iterator[Server]:
    server = start_provider()
    set_user(server, ALICE, email=ALICE, name="Alice Liddell", groups=["staff"])
    set_user(server, "bob@example.com", email="bob@example.com", name="Bob")
    set_user(server, "blocked@example.com", email="blocked@example.com", name="Blocked")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sso(provider) -> Iterator[Server]:
    server = launch_sso_server(provider, ["--oauth-allow-domains", "example.com", "--prefix", "/pre",
                                          "--workers", "2"])
    yield server
    server.stop()


def login_at_provider(page, sub: str) -> None:
    """Fill the provider's form with a subject and send it."""
    page.fill("input[name=sub]", sub)
    page.press("input[name=sub]", "Enter")


def test_login_app_round_trip_and_logout_in_the_browser(sso, provider, page):
    app_url = sso.url + "/pre/claims"
    page.goto(app_url)
    assert page.url.startswith(provider.url + "/oauth2/authorize?")
    login_at_provider(page, ALICE)
    page.wait_for_url(app_url)
    wait_for_text(page, "who", ALICE)
    wait_for_text(page, "name", "Alice Liddell")
    page.click(".bk-btn")  # the widget's event goes to the server, its answer comes back
    wait_for_text(page, "answer", f"answered {ALICE}")

    page.goto(sso.url + "/pre/logout")
    page.click("#logout-button")
    page.wait_for_url(provider.url + "/oauth2/end_session**")  # RP-initiated logout
    page.click("button[type=submit]")
    page.wait_for_url(sso.url + "/pre/logout")
    assert page.locator("#sso-message").inner_text() == "You are logged out."
    page.goto(app_url)
    assert page.url.startswith(provider.url + "/oauth2/authorize?")  # logged out here


def test_a_user_the_rules_refuse_sees_who_they_are_and_can_log_out(sso, provider, page):
    page.goto(sso.url + "/pre/claims")
    login_at_provider(page, "mallory@elsewhere.test")
    page.wait_for_url(sso.url + "/pre/claims")
    assert page.locator("#forbidden-user").inner_text().startswith("You are logged in as mallory@elsewhere.test")
    page.click("#logout-button")
    page.wait_for_url(provider.url + "/oauth2/end_session**")


def test_the_login_holds_on_both_workers(sso, page):
    page.goto(sso.url + "/pre/claims")
    login_at_provider(page, ALICE)
    page.wait_for_url(sso.url + "/pre/claims")
    wait_for_text(page, "who", ALICE)
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    session = requests.Session()
    pids: set[str] = set()

    def open_one(_: int) -> tuple[str, str]:
        token = page_token(session, sso.url + "/pre/claims", cookie)
        socket = BokehSocket(sso.ws_url + "/pre/claims/ws", token, cookie)
        try:
            texts = socket.texts()
        finally:
            socket.close()
        return texts["pid"], texts["who"]

    with ThreadPoolExecutor(8) as pool:
        for _ in range(30):  # pages loaded at once spread over the workers
            for pid, who in pool.map(open_one, range(8)):
                assert who == ALICE
                pids.add(pid)
            if len(pids) == 2:
                break
    assert pids == {str(pid) for pid in sso.worker_pids()}


@pytest.fixture(scope="module")
def host_app(provider) -> Iterator[Server]:
    server = launch_flask_app(OAUTH_APPS / "sso_host_app.py", env={
        "OIDC_ISSUER": provider.url, "OIDC_CLIENT_SECRET": CLIENT_SECRET, "SECRET_KEY": COOKIE_SECRET})
    yield server
    server.stop()


def test_a_host_app_with_a_rule_per_app_and_a_hook(host_app, provider, page):
    page.goto(host_app.url + "/bokeh/staff")
    login_at_provider(page, ALICE)
    page.wait_for_url(host_app.url + "/bokeh/staff")
    wait_for_text(page, "groups", "staff")
    page.click(".bk-btn")
    wait_for_text(page, "answer", f"answered {ALICE}")
    # bob may use /claims, not /staff (not in the group); blocked@ neither (the hook)
    bob = sso_login(host_app.url + "/bokeh/claims", "bob@example.com")
    assert bob.get(host_app.url + "/bokeh/claims", timeout=TIMEOUT).status_code == 200
    assert bob.get(host_app.url + "/bokeh/staff", timeout=TIMEOUT).status_code == 403
    index = bob.get(host_app.url + "/bokeh/", timeout=TIMEOUT, allow_redirects=False)
    assert index.headers["Location"] == "/bokeh/claims"  # the index's only app bob may use
    blocked = sso_login(host_app.url + "/bokeh/claims", "blocked@example.com")
    assert blocked.get(host_app.url + "/bokeh/claims", timeout=TIMEOUT).status_code == 403
