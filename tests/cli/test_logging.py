"""Logging as a ``bokeh serve`` user expects it: timestamps, ``--log-format`` and
``--log-file`` for every line of ours (the start lines too), websockets opened and closed
and 404s at info, a callback error naming its app, and a host app's log format untouched."""
from __future__ import annotations

import re

import requests

from tests.support.browser import launch_host_app
from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, model_by_name, model_changed, page_token

HELLO = APPS / "hello.py"


def test_log_format_and_log_file_hold_every_line_of_ours(tmp_path):
    log_file = tmp_path / "server.log"
    server = launch("cli", apps=[HELLO], args=["--log-format", "OURS %(levelname)s %(message)s",
                                               "--log-file", str(log_file)], wait_path="/hello")
    try:
        with BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url, "hello")) as ws:
            ws.pull()
        assert requests.get(server.url + "/no-such-app", timeout=10).status_code == 404
        _wait_for_text(log_file, "OURS INFO 404 GET /no-such-app")
        text = log_file.read_text()
    finally:
        server.stop()
    assert "OURS INFO Starting bokeh-flask " in text
    assert f"OURS INFO Bokeh app running at: http://127.0.0.1:{server.port}/hello" in text
    assert re.search(r"OURS INFO WebSocket connection opened: app /hello, session \S+", text)
    assert "Bokeh app running at" not in server.log_text()  # the terminal only has gunicorn's lines


def test_websockets_and_404s_are_logged_at_info_with_timestamps():
    server = launch("cli", apps=[HELLO], wait_path="/hello")
    try:
        with BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url, "hello")) as ws:
            ws.pull()
        requests.get(server.url + "/hello/nope", timeout=10)
        server.wait_for_log("WebSocket connection closed")
        server.wait_for_log("404 GET /hello/nope")
        log = server.log_text()
    finally:
        server.stop()
    stamp = r"^\d\d\d\d-\d\d-\d\d [\d:,]+ "
    assert re.search(stamp + r"WebSocket connection opened: app /hello, session \S+$", log, re.M), log
    assert re.search(stamp + r"WebSocket connection closed by the client: code=1000, reason='' "
                     r"\(app /hello, session \S+\)$", log, re.M), log
    assert re.search(stamp + r"404 GET /hello/nope \(127\.0\.0\.1\)$", log, re.M), log


def test_a_callback_error_names_its_app():
    server = launch("cli", apps=[APPS / "ws_raising_app.py"], wait_path="/ws_raising_app")
    try:
        with BokehWS(f"{server.ws_url}/ws_raising_app/ws", page_token(server.url, "ws_raising_app")) as ws:
            box = model_by_name(ws.pull().content["doc"], "box")
            ws.patch(model_changed(box["id"], "value", "boom"))
            ws.barrier()
        server.wait_for_log("the app's callback raised")
        log = server.log_text()
    finally:
        server.stop()
    assert re.search(r"PATCH-DOC from session \S+ of app /ws_raising_app: the app's callback raised", log), log


def test_a_host_app_keeps_its_own_request_log_format():
    """Embedding adds no handler to the root logger: werkzeug's request lines stay werkzeug's."""
    server = launch_host_app(kind="flask")
    try:
        requests.get(server.url + "/", timeout=10)
        server.wait_for_log('"GET / HTTP/1.1" 200')
        log = server.log_text()
    finally:
        server.stop()
    line = next(text for text in log.splitlines() if '"GET / HTTP/1.1" 200' in text)
    assert re.match(r'^127\.0\.0\.1 - - \[[^]]+\] "GET / HTTP/1.1" 200 -$', line), repr(line)


def _wait_for_text(path, text: str, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}:\n{path.read_text() if path.exists() else ''}")
