"""Broadcasts (issue 25 item 3): ``bokeh_flask.broadcast`` from a Flask POST route reaches
every connected websocket of the app on every worker and host, as a PATCH-DOC.

Two "hosts" are two gunicorn servers (two workers each, private directories of their own)
sharing one real redis-server. A session whose handler raises is logged with its app and
session while the others still get the value; with Redis stopped, a broadcast still
reaches both workers of its host and the log says once that the other hosts were not
reached. Sessions that live through a ``kill -HUP`` reload are rebuilt with the newest
value, even one sent from the other host while their websocket was down. The one-host
case without Redis (the host channel) is the README's example, run as written by
``tests/scaleout/test_readme_broadcast.py``.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests
from bokeh.util.token import get_session_id, get_token_payload

from tests.support.servers import BIN, Server, free_port, spawn
from tests.support.wire import BokehWS, Closed, model_by_name, model_changed, model_changes, page_token

HOST_APP = Path(__file__).resolve().parents[1] / "http" / "apps" / "broadcast_host.py"
WORKERS = 2
OWNER_KEY = "bokeh_flask_worker"


def start_host(tmp: Path, name: str, redis_url: str | None) -> Server:
    port = free_port()
    env = {"PYTHONUNBUFFERED": "1", "PATH": str(BIN), "BOKEH_FLASK_WORKERS": str(WORKERS),
           "BOKEH_DEFAULT_SERVER_PORT": str(port), "BOKEH_FLASK_STATE_DIR": str(tmp / name)}
    if redis_url:
        env["BOKEH_FLASK_REDIS_URL"] = redis_url
    return spawn(name, [str(BIN / "gunicorn"), "-c", str(Path(__file__).parents[2] / "gunicorn.conf.py"),
                        "-b", f"127.0.0.1:{port}", "--chdir", str(HOST_APP.parent), "broadcast_host:app"],
                 port, env, ready=lambda status: status == 200, ready_path="/health")


@pytest.fixture(scope="module")
def hosts(redis_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("broadcast")
    started = [start_host(tmp, f"host-{i}", redis_server[1]) for i in "ab"]
    yield started
    for host in started:
        host.stop()


class Tab:
    """A connected websocket of a session of ``/target`` and the id of its Div."""

    def __init__(self, host: Server) -> None:
        self.host = host
        self.token = page_token(host.url, "target")
        self.owner = int(get_token_payload(self.token)[OWNER_KEY].rsplit(".", 1)[1])
        self.ws = BokehWS(f"{host.ws_url}/target/ws", self.token)
        div = model_by_name(self.ws.pull().content["doc"], "value")
        self.div, self.text = div["id"], div["attributes"]["text"]

    def wait_for(self, text: str) -> None:
        self.ws.recv_until(lambda m: any(c["new"] == text for c in model_changes([m], "text", self.div)))

    def sees(self, text: str) -> None:
        """The document the tab pulled shows ``text``, or a change to it arrives."""
        if self.text != text:
            self.wait_for(text)


def tabs_on_every_worker(host: Server, per_worker: int = 2, limit: int = 40) -> list[Tab]:
    """Open tabs until each worker of ``host`` owns ``per_worker`` sessions."""
    tabs: list[Tab] = []
    while len(tabs) < limit:
        tabs.append(Tab(host))
        owners = [tab.owner for tab in tabs]
        if len(set(owners)) == WORKERS and all(owners.count(o) >= per_worker for o in set(owners)):
            return tabs
    raise AssertionError(f"pages of {host.kind} came from {set(t.owner for t in tabs)} only")


def close_all(tabs: list[Tab]) -> None:
    for tab in tabs:
        tab.ws.close()


def test_a_post_reaches_every_session_of_every_worker_and_host(hosts):
    tabs = [tab for host in hosts for tab in tabs_on_every_worker(host)]
    refusing = tabs[1]
    refusing.ws.patch(model_changed(refusing.div, "text", "refuse"))
    refusing.ws.barrier()
    log_before = len(hosts[0].log_text())
    try:
        answer = requests.post(hosts[0].url + "/push", data={"value": "from a"}, timeout=30)
        assert answer.status_code == 200
        for tab in tabs:
            if tab is not refusing:
                tab.wait_for("from a")
        hosts[0].wait_for_log("the handler failed for session")
        log = hosts[0].log_text()[log_before:]
        short = get_session_id(refusing.token).split(".", 1)[0][:8]
        assert f"broadcast 'value': the handler failed for session {short}… of app /target" in log
        assert "this session refuses broadcasts" in log
        assert requests.post(hosts[1].url + "/push", data={"value": "from b"}, timeout=30).status_code == 200
        for tab in tabs:
            if tab is not refusing:
                tab.wait_for("from b")
    finally:
        close_all(tabs)


def test_a_new_tab_starts_with_the_newest_value(hosts):
    """A session built after a broadcast is built with its value (or, when the value is
    still on its way to that worker, gets it as soon as it arrives)."""
    assert requests.post(hosts[1].url + "/push", data={"value": "newest"}, timeout=30).status_code == 200
    tabs = [tab for host in hosts for tab in tabs_on_every_worker(host, per_worker=1)]
    try:
        for tab in tabs:
            tab.sees("newest")
    finally:
        close_all(tabs)


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sessions_living_through_a_rolling_reload_miss_no_update(hosts):
    """kill -HUP: the old workers close their websockets with 1001; a broadcast from the
    other host while the tabs are away reaches them once they are back (rebuilt from their
    tokens in the new workers)."""
    reloaded, other = hosts
    tabs = tabs_on_every_worker(reloaded, per_worker=1)
    old_workers = set(reloaded.worker_pids())
    os.kill(reloaded.process.pid, signal.SIGHUP)
    for tab in tabs:
        with pytest.raises(Closed) as closed:
            tab.ws.recv_until(lambda m: False)
        assert closed.value.code == 1001
    assert requests.post(other.url + "/push", data={"value": "while away"}, timeout=30).status_code == 200
    wait_until(lambda: not set(reloaded.worker_pids()) & old_workers and len(reloaded.worker_pids()) == WORKERS)
    for tab in tabs:
        with BokehWS(f"{reloaded.ws_url}/target/ws", tab.token) as ws:
            assert model_by_name(ws.pull().content["doc"], "value")["attributes"]["text"] == "while away"


def test_with_redis_down_a_post_still_reaches_this_hosts_sessions(hosts, redis_server):
    """The last test of the module: it stops the module's Redis."""
    process, _ = redis_server
    host = hosts[1]
    tabs = tabs_on_every_worker(host, per_worker=1)
    process.terminate()
    process.wait(timeout=10)
    log_before = len(host.log_text())
    try:
        with requests.Session() as client:  # one keep-alive connection: one worker sends both
            for value in ("no redis 1", "no redis 2"):
                assert client.post(host.url + "/push", data={"value": value}, timeout=30).status_code == 200
                for tab in tabs:
                    tab.wait_for(value)
        log = host.log_text()[log_before:]
        assert log.count("the other hosts were not reached") == 1, log
        assert "Traceback" not in log
    finally:
        close_all(tabs)
