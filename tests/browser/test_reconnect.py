"""A dropped websocket brings the tab back (BokehJS >= 3.8 reconnects with the same token).

- A network blip or proxy timeout (a TCP proxy the test cuts): the tab meets its live
  session again, state intact, and the app's ConnectionLost callback ran.
- A worker restart (the gunicorn worker killed): the new worker rebuilds the session from
  the token and the tab works again.
- A tab older than its token: the expired token re-attaches to the live session.
- An app that turns reconnecting off (``doc.config.reconnect_session = False``): BokehJS
  does not reconnect and says so, as under ``bokeh serve``.

Each test prints the time from the drop to the first click that reached Python again.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from bokeh_flask.app.apps.bokeh_compat import BOKEHJS_RECONNECTS
from tests.support.browser import KINDS, model_value, wait_for_model
from tests.support.servers import launch
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.skipif(not BOKEHJS_RECONNECTS, reason="BokehJS reconnects from Bokeh 3.8 on")

APPS = Path(__file__).resolve().parent / "apps"
COUNTER = APPS / "reconnect_counter.py"
#: Long enough that a dropped session outlives every reconnect attempt (0-30 s after the drop).
KEEP_SESSIONS = {"unused_session_lifetime": 60_000}


@pytest.fixture(scope="module", params=KINDS)
def counter_server(request):
    server = launch(request.param, apps=[COUNTER, APPS / "reconnect_off.py"],
                    env={"BOKEH_FLASK_SETTINGS": json.dumps(KEEP_SESSIONS)})
    yield server
    server.stop()


@pytest.fixture
def proxy(counter_server):
    p = TcpProxy(counter_server.port)
    yield p
    p.close()


def wait_reconnected(page) -> None:
    """BokehJS says so once the new socket is open and the document pulled again (a click
    before that would go nowhere)."""
    page.get_by_text("Client connect was reestablished").wait_for(timeout=30_000)


def click_to(page, count: int) -> None:
    """Click the button once and wait until Python's callback shows ``count``."""
    page.locator("div.bk-Button button").click()
    wait_for_model(page, "count", f"v === '{count}'")


def open_counter(page, url: str, clicks: int) -> None:
    page.goto(url)
    wait_for_model(page, "count", "v === '0'")
    for n in range(1, clicks + 1):
        click_to(page, n)


def test_dropped_socket_returns_to_its_live_session(proxy, page):
    open_counter(page, proxy.url + "/reconnect_counter", 3)
    started = time.monotonic()
    with page.expect_websocket(timeout=20_000):
        assert proxy.drop_all() >= 2
    wait_reconnected(page)
    click_to(page, 4)  # the count goes on: the same live session, state intact
    back = time.monotonic() - started
    wait_for_model(page, "lost", "v === '1'")  # the server gave the document ConnectionLost
    print(f"\nreconnect to the live session: drop -> interactive {back:.2f} s")


def test_worker_restart_rebuilds_the_session_from_its_token(start_server, page):
    server = start_server("gunicorn", apps=[COUNTER])
    open_counter(page, server.url + "/reconnect_counter", 2)
    old_pid = model_value(page, "pid")
    started = time.monotonic()
    with page.expect_websocket(timeout=30_000):
        os.kill(int(old_pid), signal.SIGKILL)
    wait_for_model(page, "pid", f"v !== '{old_pid}'", timeout=30_000)
    wait_for_model(page, "count", "v === '0'")  # rebuilt: the new worker ran the app again
    click_to(page, 1)
    back = time.monotonic() - started
    print(f"\nreconnect after a worker restart: drop -> interactive {back:.2f} s")


def test_tab_older_than_its_token_comes_back(start_server, page):
    server = start_server("gunicorn", apps=[COUNTER], env={"BOKEH_FLASK_SETTINGS": json.dumps(
        {**KEEP_SESSIONS, "session_token_expiration": 3})})
    proxy = TcpProxy(server.port)
    try:
        loaded = time.time()
        open_counter(page, proxy.url + "/reconnect_counter", 1)
        while time.time() < loaded + 4:  # the token (3 s from the whole second) has expired
            time.sleep(0.1)
        started = time.monotonic()
        with page.expect_websocket(timeout=20_000):
            proxy.drop_all()
        wait_reconnected(page)
        click_to(page, 2)
        print(f"\nexpired token re-attached: drop -> interactive {time.monotonic() - started:.2f} s")
        assert "re-attaches to live session" not in server.log_text()  # debug level only
    finally:
        proxy.close()


def test_reconnect_off_in_the_document_config_is_respected(proxy, page):
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(proxy.url + "/reconnect_off")
    wait_for_model(page, "count", "v === '0'")
    click_to(page, 1)
    proxy.drop_all()
    page.get_by_text("Client connection was lost permanently").wait_for()
    assert len(sockets) == 1
