"""``bokeh-flask serve`` at the terminal as a ``bokeh serve`` user meets it (issue 15): the
startup lines, ``--dev`` and ``--num-procs``, ``--show``, ``--log-level debug``, and the
open-files warning only when it matters."""
from __future__ import annotations

import stat

from tests.support.cli import HELLO, run_cli
from tests.support.servers import APPS, launch


def test_one_running_at_line_per_app_with_prefix_and_real_port():
    server = launch("cli", apps=[HELLO, APPS / "http_dirapp"], args=["--prefix", "/pre"],
                    wait_path="/pre/hello")
    try:
        log = server.log_text()
        base = f"http://127.0.0.1:{server.port}/pre"
        assert f"Bokeh app running at: {base}/hello\n" in log
        assert f"Bokeh app running at: {base}/http_dirapp\n" in log
        assert "open-files limit" not in log  # the default limit is plenty
    finally:
        server.stop()


def test_dev_before_the_path_is_refused_as_bokeh_serve_does():
    result = run_cli("serve", "--dev", str(HELLO), timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bokeh-flask: error: --dev option requires an app script or directory be provided "
        "(give the app's path before --dev: serve app.py --dev [FILES])"]


def test_dev_limits_the_workers_to_one():
    server = launch("cli", apps=[HELLO], args=["--dev", "--num-procs", "2"], wait_path="/hello")
    try:
        log = server.log_text()
        assert "Running in --dev mode. --num-procs is limited to 1." in log
        assert log.count("Booting worker with pid") == 1
    finally:
        server.stop()


def test_show_opens_every_app_in_the_browser(tmp_path):
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    server = launch("cli", apps=[HELLO, APPS / "http_dirapp"], args=["--show"], wait_path="/hello",
                    env={"BROWSER": f"{browser} %s"})
    try:
        deadline_ok = _wait_for_file(opened, lines=2)
        assert deadline_ok, server.log_text()[-2000:]
        assert sorted(opened.read_text().split()) == [f"http://127.0.0.1:{server.port}/hello",
                                                      f"http://127.0.0.1:{server.port}/http_dirapp"]
    finally:
        server.stop()


def _wait_for_file(path, timeout: float = 10.0, lines: int = 1) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().split()) >= lines:
            return True
        time.sleep(0.05)
    return False


def test_debug_log_level_shows_the_session_layer_not_gunicorns_config():
    import requests

    from tests.support.wire import BokehWS, page_token

    server = launch("cli", apps=[HELLO], args=["--log-level", "debug"], wait_path="/hello")
    try:
        with BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url, "hello")) as ws:
            ws.pull()
        requests.get(server.url + "/hello/ws", timeout=10)  # a plain GET: refused
        server.wait_for_log("PULL-DOC-REQ in")
        log = server.log_text()
        assert "session " in log and "created for app /hello" in log
        assert "worker_connections:" not in log and "limit_request_field_size:" not in log
    finally:
        server.stop()
