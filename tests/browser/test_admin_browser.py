"""The admin page (``--admin``) in chromium with two gunicorn workers: after sessions of
another app are open in both workers, its table shows both workers and their sessions add
up to those opened, and its chart grows every second; the master removes the stats
directory when it stops."""
from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from bokeh_flask.app.runtime import worker_stats
from tests.support.browser import TIMEOUT_MS, assert_no_console_errors, wait_for_bokeh, wait_for_model
from tests.support.servers import launch
from tests.support.wire import BokehWS, page_token

HELLO = Path(__file__).resolve().parents[1] / "apps" / "hello.py"

#: The workers table's data, columns as plain arrays, whatever BokehJS keeps them as.
_DATA = "(d => d instanceof Map ? Object.fromEntries(d) : d)(v)"


def hello_sessions_per_worker(directory: str) -> dict[int, int]:
    return {record["pid"]: record["apps"]["/hello"]["sessions"]
            for record in worker_stats.read_workers(directory)}


def test_admin_page_shows_both_workers_live(page):
    server = launch("cli", apps=[HELLO], args=["--admin", "--workers", "2"],
                    wait_path="/healthz")  # no session of its own: /hello sessions are counted
    try:
        server.wait_for_log("worker stats for the admin page in ")
        directory = re.search(r"worker stats for the admin page in (\S+)", server.log_text()).group(1)
        tokens: list[str] = []
        with ThreadPoolExecutor(8) as pool, ExitStack() as sockets:
            deadline = time.monotonic() + 30
            # page loads in parallel until both workers hold sessions of /hello
            while True:
                tokens += pool.map(lambda _: page_token(server.url, "hello"), range(16))
                time.sleep(1.2)  # a worker's file is rewritten every second
                per_worker = hello_sessions_per_worker(directory)
                if len(per_worker) == 2 and all(per_worker.values()) or time.monotonic() > deadline:
                    break
            assert len(per_worker) == 2 and all(per_worker.values()), per_worker
            for token in tokens:  # connected, the sessions outlive the test's checks
                sockets.enter_context(BokehWS(f"{server.ws_url}/hello/ws", token)).pull()

            page.goto(server.url + "/admin")
            wait_for_bokeh(page)
            wait_for_model(page, "admin_workers",
                           f"(d => d.pid.length === 2 && Array.from(d.sessions).reduce((a, b) => a + b, 0)"
                           f" === {len(tokens)} && Array.from(d.connections).reduce((a, b) => a + b, 0)"
                           f" === {len(tokens)})({_DATA})", expr="data", timeout=TIMEOUT_MS)
            pids = page.evaluate("() => Array.from((d => d instanceof Map ? Object.fromEntries(d) : d)("
                                 "Bokeh.documents[0].get_model_by_name('admin_workers').data).pid)")
            assert sorted(pids) == sorted(hello_sessions_per_worker(directory))
            # the chart is updated every second
            wait_for_model(page, "admin_history", f"(d => d.time.length >= 3)({_DATA})", expr="data")
            assert_no_console_errors(page)
    finally:
        server.stop()
    assert not os.path.exists(directory), "the master removes the stats directory at exit"
