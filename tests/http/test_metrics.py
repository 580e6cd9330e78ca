"""``<prefix>/metrics`` (issue 17 item 2): off unless asked for; one scrape covers every
gunicorn worker (prometheus_client's multiprocess mode, a directory per master); the bearer
token; the directory goes when the server stops; a dead worker's live gauges stop counting."""
from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import get
from tests.support.servers import APPS
from tests.support.wire import BokehWS, page_token

HELLO = APPS / "hello.py"
TOKEN = "scrape-token-0123456789"


def scrape(server, **headers: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of one scrape."""
    response = get(server, "/metrics", headers=headers)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def worker_pids(samples: dict) -> set[str]:
    return {dict(labels)["pid"] for name, labels in samples if name == "bokeh_flask_process_resident_memory_bytes"}


def metrics_dir(server) -> str:
    server.wait_for_log("metrics of every worker in ")
    return re.search(r"metrics of every worker in (\S+)", server.log_text()).group(1)


def test_off_by_default(server):
    assert get(server, "/metrics").status_code == 404


def test_one_scrape_adds_up_both_workers(start_server):
    server = start_server("cli", apps=[HELLO], args=["--workers", "2", "--metrics"])
    pages = 40
    with ThreadPoolExecutor(8) as pool:  # concurrent: both workers serve some
        tokens = list(pool.map(lambda _: page_token(server.url, "hello"), range(pages)))
    sockets = 6
    for token in tokens[:sockets]:
        with BokehWS(f"{server.ws_url}/hello/ws", token) as ws:
            ws.pull()
    time.sleep(1.5)  # each worker writes its message counts every second (app.metrics.FLUSH_INTERVAL)
    samples = scrape(server)
    assert len(worker_pids(samples)) == 2, "both workers report their memory"
    assert value(samples, "bokeh_flask_sessions_created_total", app="/hello") == pages
    assert value(samples, "bokeh_flask_sessions", app="/hello") == pages
    assert value(samples, "bokeh_flask_page_seconds_count", app="/hello") == pages
    assert value(samples, "bokeh_flask_document_build_seconds_count", app="/hello") == pages
    assert value(samples, "bokeh_flask_messages_total", app="/hello", msgtype="PULL-DOC-REQ",
                 direction="in") == sockets
    assert value(samples, "bokeh_flask_messages_total", app="/hello", msgtype="ACK", direction="out") == sockets
    assert value(samples, "bokeh_flask_messages_total", app="/hello", msgtype="PULL-DOC-REPLY",
                 direction="out") == sockets
    assert value(samples, "bokeh_flask_message_seconds_count", app="/hello", msgtype="PULL-DOC-REQ") == sockets
    for pid in worker_pids(samples):
        assert value(samples, "bokeh_flask_process_open_fds", pid=pid) > 0
    deadline = time.monotonic() + 10
    while value(samples, "bokeh_flask_websocket_connections", app="/hello") and time.monotonic() < deadline:
        time.sleep(0.1)
        samples = scrape(server)
    assert value(samples, "bokeh_flask_websocket_connections", app="/hello") == 0


def test_a_refused_websocket_is_counted(start_server):
    server = start_server("cli", apps=[HELLO], args=["--metrics"])
    handshake = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "bokeh, nope"}
    assert get(server, "/hello/ws", headers={**handshake, "Origin": "http://evil.example"}).status_code == 403
    assert get(server, "/hello/ws", headers={**handshake, "Origin": server.url}).status_code == 403
    samples = scrape(server)
    assert value(samples, "bokeh_flask_websocket_refused_total", reason="origin") == 1
    assert value(samples, "bokeh_flask_websocket_refused_total", reason="token") == 1


def test_the_token_is_required_when_set(start_server):
    server = start_server("cli", apps=[HELLO], args=["--metrics", "--metrics-token", TOKEN])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        response = get(server, "/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert scrape(server, Authorization=f"Bearer {TOKEN}") is not None
    assert scrape(server, Authorization=f"bearer {TOKEN}") is not None
    assert TOKEN not in server.log_text()


def test_a_token_without_metrics_is_refused_at_start(tmp_path):
    import subprocess

    from tests.support.servers import BIN

    done = subprocess.run([str(BIN / "bokeh-flask"), "serve", str(HELLO), "--metrics-token", TOKEN],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--metrics-token needs --metrics" in done.stderr
    assert TOKEN not in done.stderr


@pytest.mark.parametrize("command", ["cli", "gunicorn"])
def test_a_metrics_directory_that_cannot_be_written_stops_the_start_in_one_line(tmp_path, command):
    import subprocess

    from tests.support.servers import BIN, ROOT, free_port

    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory below a regular file: refused even to root
    unwritable = str(blocker / "metrics")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOKEH_")}
    env.update(PROMETHEUS_MULTIPROC_DIR=unwritable, BOKEH_FLASK_METRICS="1", BOKEH_APPS=str(HELLO))
    port = str(free_port())
    argv = ([str(BIN / "bokeh-flask"), "serve", str(HELLO), "--metrics", "--port", port] if command == "cli" else
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"bokeh-flask: error: --metrics: cannot write the metrics directory "
                      f"(PROMETHEUS_MULTIPROC_DIR) {unwritable}: Not a directory"], done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr


def test_the_directory_goes_when_the_server_stops(start_server):
    server = start_server("gunicorn", apps=[HELLO], env={"BOKEH_FLASK_METRICS": "1"})
    path = metrics_dir(server)
    get(server, "/hello")
    scrape(server)
    assert os.listdir(path)
    server.stop()
    assert not os.path.exists(path)


def test_a_killed_worker_leaves_no_live_gauges(start_server):
    server = start_server("cli", apps=[HELLO], args=["--workers", "2", "--metrics"])
    path = metrics_dir(server)
    pages = 0
    deadline = time.monotonic() + 30
    while True:  # a worker shows in a scrape once it has served something: reach both
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: page_token(server.url, "hello"), range(40)))
        pages += 40
        before = scrape(server)
        pids = worker_pids(before)
        if len(pids) == 2 or time.monotonic() > deadline:
            break
    assert len(pids) == 2
    victim = sorted(pids)[0]
    os.kill(int(victim), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while os.path.exists(os.path.join(path, f"gauge_livesum_{victim}.db")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(name.endswith(f"_{victim}.db") and name.startswith("gauge_live") for name in os.listdir(path))
    # the replacement answers too; a scrape no longer counts the dead worker's live values
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: get(server, "/healthz"), range(20)))
    after = scrape(server)
    assert victim not in worker_pids(after)
    assert value(after, "bokeh_flask_sessions", app="/hello") < pages
    assert value(after, "bokeh_flask_sessions_created_total", app="/hello") == pages  # counters stay
