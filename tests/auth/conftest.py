"""Fixtures for the authentication tests: servers with each kind of auth provider.

* ``login_server``: bokeh-flask's standalone Flask-Login provider (``apps/login_server.py``)
  under gunicorn's gevent worker and under ``flask run``;
* ``mounted_login_server``: the same mounted with ``url_prefix="/mnt"`` and ``prefix="/pre"``;
* ``bokeh_example_server``: Bokeh's own example auth module, unchanged, through
  ``bokeh-flask serve --auth-module ... --enable-xsrf-cookies --cookie-secret ...``;
* ``host_app_server``: ``examples/auth/host_app.py``, a Flask app with its own Flask-Login.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.auth import BOKEH_EXAMPLE_AUTH, COOKIE_SECRET, LOGIN_SERVER, WHOAMI, launch_flask_app
from tests.support.servers import EXAMPLES, Server, launch


@pytest.fixture(scope="package", params=["gunicorn", "flask"])
def login_server(request) -> Iterator[Server]:
    server = launch_flask_app(LOGIN_SERVER, request.param)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def mounted_login_server() -> Iterator[Server]:
    server = launch_flask_app(LOGIN_SERVER, "gunicorn",
                              env={"AUTH_TEST_URL_PREFIX": "/mnt", "AUTH_TEST_PREFIX": "/pre"})
    yield server
    server.stop()


@pytest.fixture(scope="package")
def bokeh_example_server() -> Iterator[Server]:
    server = launch("cli", apps=[WHOAMI], args=[
        "--auth-module", str(BOKEH_EXAMPLE_AUTH), "--enable-xsrf-cookies",
        "--cookie-secret", COOKIE_SECRET])
    yield server
    server.stop()


@pytest.fixture(scope="package")
def host_app_server() -> Iterator[Server]:
    server = launch_flask_app(EXAMPLES / "auth" / "host_app.py", "gunicorn",
                              env={"SECRET_KEY": "host-secret-" + "y" * 20})
    yield server
    server.stop()

