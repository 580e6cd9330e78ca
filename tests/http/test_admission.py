"""Admission control: a worker holding ``--max-sessions`` live sessions answers a page that
would make another with 503 and ``Retry-After`` (a load balancer moves on), says so on
``/readyz`` and in the metrics, while its sessions keep working; once sessions expire it
takes new ones again."""
from __future__ import annotations

import time

import requests

from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, page_token

HELLO = APPS / "hello.py"
CAP = 3


def test_a_full_worker_refuses_new_sessions_and_keeps_its_own():
    server = launch("cli", apps=[HELLO], args=["--max-sessions", str(CAP), "--metrics",
                                               "--unused-session-lifetime", "1000",
                                               "--check-unused-sessions", "200"], wait_path="/healthz")
    try:
        tokens = [page_token(server.url, "hello") for _ in range(CAP)]
        sockets = [BokehWS(f"{server.ws_url}/hello/ws", token) for token in tokens]
        for ws in sockets:
            ws.pull()
        refused = requests.get(server.url + "/hello", timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "15"
        assert f"full: {CAP} live sessions (--max-sessions {CAP})" in refused.text
        ready = requests.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 503 and "full" in ready.text
        for ws in sockets:  # the sessions it holds still serve
            ws.pull()
        metrics = requests.get(server.url + "/metrics", timeout=10).text
        assert "bokeh_flask_max_sessions" in metrics and f" {CAP}.0" in metrics.split("bokeh_flask_max_sessions")[-1]
        assert 'bokeh_flask_pages_refused_total{app="/hello",reason="capacity"} 1.0' in metrics
        assert "Refusing a new session of app /hello: this worker is full" in server.log_text()
        for ws in sockets:
            ws.close()
        deadline = time.monotonic() + 15  # the closed tabs' sessions expire, and room is made
        while requests.get(server.url + "/hello", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the worker stayed full after its sessions expired"
            time.sleep(0.2)
        assert requests.get(server.url + "/readyz", timeout=10).status_code == 200
    finally:
        server.stop()


def test_without_a_cap_nothing_is_refused():
    server = launch("cli", apps=[HELLO], wait_path="/healthz")
    try:
        assert all(requests.get(server.url + "/hello", timeout=10).status_code == 200 for _ in range(5))
        assert requests.get(server.url + "/readyz", timeout=10).status_code == 200
    finally:
        server.stop()
