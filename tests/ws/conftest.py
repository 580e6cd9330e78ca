"""Fixtures for the websocket protocol and bokeh.client tests.

``server`` is re-declared here with package scope (same apps, same two kinds) so the
whole folder starts each kind once instead of once per module.
"""
from __future__ import annotations

import json
from typing import Iterator

import pytest
from bokeh.util.token import generate_secret_key

from tests.support.servers import APPS, Server, launch
from tests.support.wire import BokehWS, page_token

KINDS = ["gunicorn", "flask"]
ALL_APPS = [APPS / "hello.py", *sorted(APPS.glob("*_app.py"))]

#: Short intervals so keep-alive and session expiry are observable within a test.
TUNED_SETTINGS = {
    "keep_alive": 200,
    "unused_session_lifetime": 300,
    "check_unused_sessions": 100,
}
#: A small incoming-message limit (kept apart from the fast keep-alive above, so the size
#: tests do not depend on answering pings in time).
LIMITED_SETTINGS = {"websocket_max_message_size": 1_000_000}


def _serve(kind: str, env: dict | None = None) -> Iterator[Server]:
    s = launch(kind, apps=ALL_APPS, env=env)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="package", params=KINDS)
def server(request) -> Iterator[Server]:
    """hello.py plus every tests/apps/*_app.py, default settings."""
    yield from _serve(request.param)


@pytest.fixture(scope="package", params=KINDS)
def tuned_server(request) -> Iterator[Server]:
    """Same apps with TUNED_SETTINGS (via BOKEH_FLASK_SETTINGS)."""
    yield from _serve(request.param, {"BOKEH_FLASK_SETTINGS": json.dumps(TUNED_SETTINGS)})


@pytest.fixture(scope="package", params=KINDS)
def limited_server(request) -> Iterator[Server]:
    """Same apps with LIMITED_SETTINGS (via BOKEH_FLASK_SETTINGS)."""
    yield from _serve(request.param, {"BOKEH_FLASK_SETTINGS": json.dumps(LIMITED_SETTINGS)})


@pytest.fixture(scope="package", params=KINDS)
def signed_server(request) -> Iterator[Server]:
    """Signed session ids and tokens; the key is in ``signed_server.env``."""
    yield from _serve(request.param, {"BOKEH_SECRET_KEY": generate_secret_key(),
                                      "BOKEH_SIGN_SESSIONS": "yes"})


@pytest.fixture
def connect() -> Iterator:
    """``connect(server, app="hello", token=None, **options)`` -> BokehWS (ACK already read);
    the token comes from the app's doc page unless given. All closed at teardown."""
    opened: list[BokehWS] = []

    def open_ws(srv: Server, app: str = "hello", token: str | None = None, **options) -> BokehWS:
        if token is None:
            token = page_token(srv.url, app)
        ws = BokehWS(f"{srv.ws_url}/{app}/ws", token, **options)
        opened.append(ws)
        return ws

    yield open_ws
    for ws in opened:
        ws.close()
