"""The admin page (``--admin``) is one of the apps, so an auth module guards it as it does
them: anonymous visitors go to the login, a signed-in user gets the page."""
from __future__ import annotations

import requests

from tests.support.auth import COOKIE_SECRET, SIGNED_AUTH, TIMEOUT, WHOAMI
from tests.support.servers import launch


def test_admin_page_needs_the_login_of_the_apps():
    server = launch("cli", apps=[WHOAMI], args=["--auth-module", str(SIGNED_AUTH),
                                                "--cookie-secret", COOKIE_SECRET, "--admin"],
                    wait_path="/signin")
    try:
        anonymous = requests.get(server.url + "/admin", timeout=TIMEOUT, allow_redirects=False)
        assert anonymous.status_code == 302
        assert anonymous.headers["Location"] == "/signin?next=%2Fadmin"
        session = requests.Session()
        session.post(server.url + "/signin", data={"name": "carol"}, timeout=TIMEOUT, allow_redirects=False)
        page = session.get(server.url + "/admin", timeout=TIMEOUT, allow_redirects=False)
        assert page.status_code == 200 and "bokeh-flask admin" in page.text
    finally:
        server.stop()
