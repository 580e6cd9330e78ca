"""Restarts that lose no tab (issue 17 item 3).

gunicorn runs two workers. On ``kill -HUP`` of the master (a code reload: new workers
start, the old ones get SIGTERM) each old worker keeps serving its tabs while the new ones
boot, then stops accepting and closes its websockets with 1001 (going away), a few at a
time: every open tab reconnects (BokehJS >= 3.8) to a new
worker and works again, while page requests made all along get no error. Ctrl-C stops
``bokeh-flask serve`` with its websockets closed the same way.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from bokeh_flask.app.apps.bokeh_compat import BOKEHJS_RECONNECTS
from tests.support.browser import model_value, wait_for_model
from tests.support.servers import launch
from tests.support.wire import BokehWS, model_by_name, page_token, parse_close

APPS = Path(__file__).resolve().parent / "apps"
COUNTER = APPS / "reconnect_counter.py"
HELLO = Path(__file__).resolve().parent.parent / "apps" / "hello.py"
TABS = 6


class PageLoad(threading.Thread):
    """Page requests at concurrency ``n`` until stopped; counts the failed ones."""

    def __init__(self, url: str, n: int = 4) -> None:
        super().__init__(daemon=True)
        self.url, self.n = url, n
        self.done = threading.Event()
        self.ok = 0
        self.failed: list[str] = []

    def run(self) -> None:
        threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _loop(self) -> None:
        while not self.done.is_set():
            try:
                response = requests.get(self.url, timeout=30)
                if response.status_code == 200:
                    self.ok += 1
                else:
                    self.failed.append(str(response.status_code))
            except requests.RequestException as exc:
                self.failed.append(type(exc).__name__)


@pytest.mark.skipif(not BOKEHJS_RECONNECTS, reason="BokehJS reconnects from Bokeh 3.8 on")
def test_a_rolling_reload_under_load_loses_no_request_and_no_tab(browser):
    server = launch("gunicorn", apps=[COUNTER], env={"BOKEH_FLASK_WORKERS": "2"})
    context = browser.new_context()
    load = PageLoad(server.url + "/reconnect_counter")
    try:
        pages = []
        for _ in range(TABS):
            page = context.new_page()
            page.goto(server.url + "/reconnect_counter")
            page.locator("div.bk-Button button").click()
            wait_for_model(page, "count", "v === '1'")
            pages.append((page, model_value(page, "pid")))
        load.start()
        while load.ok < 20:  # the load is on before the reload
            time.sleep(0.05)
        started = time.monotonic()
        os.kill(server.process.pid, signal.SIGHUP)
        # while the new workers boot, the old one still serves its tabs: a click is answered
        first, first_pid = pages[0]
        first.bring_to_front()  # a hidden tab gets no animation frames: Playwright's checks wait
        first.locator("div.bk-Button button").click()
        deadline = time.monotonic() + 30
        while (seen := (model_value(first, "count"), model_value(first, "pid")))[0] == "1" \
                and seen[1] == first_pid and time.monotonic() < deadline:
            first.wait_for_timeout(20)
        assert seen == ("2", first_pid), seen
        back = []
        for page, old_pid in pages:
            page.bring_to_front()
            # a new worker rebuilt the session from the token (the count starts over)
            wait_for_model(page, "pid", f"v !== '{old_pid}'", timeout=30_000)
            page.locator("div.bk-Button button").click()
            wait_for_model(page, "count", "v === '1'", timeout=30_000)
            back.append(time.monotonic() - started)
        load.done.set()
        load.join(timeout=60)
        print(f"\nrolling reload: {load.ok} pages served, {len(load.failed)} failed; "
              f"tabs interactive again after {min(back):.2f}-{max(back):.2f} s")
        assert load.failed == []
        assert "closed" in server.log_text() and "with 1001 (going away)" in server.log_text()
    finally:
        load.done.set()
        context.close()
        server.stop()


def test_ctrl_c_closes_websockets_with_1001_and_exits_quietly():
    server = launch("cli", apps=[HELLO], args=["--workers", "2"], wait_path="/hello")
    sockets = [BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url)) for _ in range(4)]
    try:
        os.killpg(server.process.pid, signal.SIGINT)  # what Ctrl-C at the terminal sends
        for ws in sockets:
            ws.ws.settimeout(10)
            opcode, data = ws.ws.recv_data(control_frame=True)
            assert opcode == 8 and parse_close(data) == (1001, "the server is restarting")
        server.process.wait(timeout=10)
        log = server.log_text()
        assert "Traceback" not in log and "SystemExit" not in log, log[-2000:]
    finally:
        for ws in sockets:
            ws.close()
        server.stop()


def test_sigterm_to_a_worker_closes_its_websockets_with_1001_and_the_other_serves_on():
    server = launch("cli", apps=[COUNTER], args=["--workers", "2"], wait_path="/reconnect_counter")
    try:
        ws = BokehWS(f"{server.ws_url}/reconnect_counter/ws", page_token(server.url, "reconnect_counter"))
        victim = int(model_by_name(ws.pull().content["doc"], "pid")["attributes"]["text"])
        os.kill(victim, signal.SIGTERM)
        ws.ws.settimeout(10)
        opcode, data = ws.ws.recv_data(control_frame=True)
        assert opcode == 8 and parse_close(data) == (1001, "the server is restarting")
        for _ in range(10):  # new sessions keep working throughout
            token = page_token(server.url, "reconnect_counter")
            with BokehWS(f"{server.ws_url}/reconnect_counter/ws", token) as fresh:
                assert fresh.pull().msgtype == "PULL-DOC-REPLY"
        ws.close()
    finally:
        server.stop()


def test_a_worker_at_max_requests_closes_its_websockets_with_1001():
    server = launch("gunicorn", apps=[COUNTER], wait_path="/reconnect_counter",
                    env={"BOKEH_FLASK_WORKERS": "2", "GUNICORN_CMD_ARGS": "--max-requests 10"})
    try:
        ws = BokehWS(f"{server.ws_url}/reconnect_counter/ws", page_token(server.url, "reconnect_counter"))
        ws.pull()
        ws.ws.settimeout(30)
        # page requests until the websocket's worker has served ten requests and restarts
        load = PageLoad(server.url + "/reconnect_counter", n=2)
        load.start()
        try:
            opcode, data = ws.ws.recv_data(control_frame=True)
        finally:
            load.done.set()
            load.join(timeout=60)
        assert opcode == 8 and parse_close(data) == (1001, "the server is restarting")
        assert load.failed == []
        assert "Handling signal" not in server.log_text()  # no signal: the worker ended by itself
        ws.close()
    finally:
        server.stop()
