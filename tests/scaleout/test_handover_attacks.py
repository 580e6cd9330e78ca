"""The handover between workers, from an attacker's side (issue 21, finding 1).

A websocket carries its tab's cookies and token, so a worker hands one only to a proven
sibling. Another local user squats every name a worker could listen on (Linux abstract
names, which anyone may bind, and the socket paths in the server's private directory)
across a ``kill -HUP`` reload and a SIGKILL of the owner: it must receive nothing, and the
tabs come back to the real server, rebuilt from their tokens. A process of the server's own
user that is not a sibling is refused both ways, and what it sends is closed.
"""
from __future__ import annotations

import array
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from bokeh.util.token import get_token_payload

from bokeh_flask.app.config import state_dir
from bokeh_flask.app.runtime import handover
from tests.support.servers import launch
from tests.support.squatter import Squatter, require_root
from tests.support.wire import BokehWS, model_by_name

APP = Path(__file__).resolve().parent.parent / "apps" / "handover_nonce.py"
WORKERS = 2
TABS = 6
OWNER_KEY = "bokeh_flask_worker"


@pytest.fixture
def server():
    require_root()
    server = launch("gunicorn", apps=[APP], wait_path="/handover_nonce",
                    env={"BOKEH_FLASK_WORKERS": str(WORKERS), "BOKEH_PY_LOG_LEVEL": "debug"})
    yield server
    server.stop()


def page(server) -> tuple[str, str]:
    html = requests.get(server.url + "/handover_nonce", timeout=30).text
    nonce = re.search(r"<title>nonce ([0-9a-f]+)</title>", html).group(1)
    token = re.search(r'"token":\s*"([^"]+)"', html.replace('\\"', '"')).group(1)
    return nonce, token


def owner_key(token: str) -> str:
    return get_token_payload(token)[OWNER_KEY]


def names_of(keys: list[str]) -> list[bytes | str]:
    """Every name a worker with one of ``keys`` could listen on, then or in an older release."""
    directory = state_dir.default_state_dir()
    names: list[bytes | str] = []
    for key in keys:
        names += [b"\0bokeh-flask-handover-" + key.encode(), b"\0bokeh-flask-draining-" + key.encode(),
                  handover.socket_path(directory, key), handover.draining_path(directory, key)]
    return names


def reconnect(server, token: str) -> str:
    """A tab's reconnect with its token: the text of the document's Div it is served."""
    with BokehWS(f"{server.ws_url}/handover_nonce/ws", token, timeout=10) as ws:
        return model_by_name(ws.pull().content["doc"], "where")["attributes"]["text"]


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def keys_of(server) -> list[str]:
    group = handover.group_of_master(server.process.pid)
    return [handover.worker_key(group, pid) for pid in server.worker_pids()]


def test_a_squatter_of_another_user_gets_nothing_across_a_reload(server):
    tabs = [page(server)[1] for _ in range(TABS)]
    old_workers = server.worker_pids()
    squatter = Squatter(names_of(keys_of(server)))
    try:
        sockets = [BokehWS(f"{server.ws_url}/handover_nonce/ws", token) for token in tabs]
        os.kill(server.process.pid, signal.SIGHUP)
        for ws in sockets:
            assert ws.wait_closed()[0] == 1001
            ws.close()
        wait_for(lambda: not set(old_workers) & set(server.worker_pids())
                 and len(server.worker_pids()) == WORKERS)
        served = [reconnect(server, token) for token in tabs]
    finally:
        report = squatter.stop()
    assert not [line for line in report if line.startswith("got")], report
    new_workers = server.worker_pids()
    assert all(int(text.rsplit("pid=", 1)[1]) in new_workers for text in served), served


def test_a_squatter_of_another_user_gets_nothing_when_the_owner_is_killed(server):
    tabs = [page(server)[1] for _ in range(TABS)]
    victim = handover.key_pid(owner_key(tabs[0]))
    mine = [token for token in tabs if handover.key_pid(owner_key(token)) == victim]
    squatter = Squatter(names_of([owner_key(mine[0])]))
    try:
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == WORKERS)
        served = [reconnect(server, token) for token in mine]
    finally:
        report = squatter.stop()
    assert not [line for line in report if line.startswith("got")], report
    assert all(f"pid={victim}" not in text for text in served)


def test_a_same_user_impostor_on_a_dead_workers_path_is_not_handed_anything(server):
    """The second check: even on the server's own path, a listener that is not the worker
    the token names (here a process of the same user) gets no byte and no descriptor."""
    _, token = page(server)
    key = owner_key(token)
    victim = handover.key_pid(key)
    path = handover.socket_path(state_dir.default_state_dir(), key)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in server.worker_pids() and not os.path.exists(path))
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    impostor.bind(path)
    impostor.listen(8)
    received: list[tuple[int, int]] = []

    def listen() -> None:
        conn, _ = impostor.accept()
        conn.settimeout(5)
        data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(64))
        received.append((len(data), sum(len(payload) // 4 for _, _, payload in ancdata)))
        conn.close()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    log_before = len(server.log_text())
    try:
        served = reconnect(server, token)
        thread.join(timeout=10)
    finally:
        impostor.close()
        os.unlink(path)
    assert f"pid={victim}" not in served
    assert received == [(0, 0)]  # it was connected to, checked and dropped before anything was sent
    log = server.log_text()[log_before:]
    assert f"not handing its websocket to the socket of worker {key}: it is process {os.getpid()}" in log, log[-2000:]
    assert "Traceback" not in log


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_non_sibling_is_refused_and_every_descriptor_it_sends_is_closed(server):
    _, token = page(server)
    key = owner_key(token)
    worker = handover.key_pid(key)
    path = handover.socket_path(state_dir.default_state_dir(), key)
    baseline = open_descriptors(worker)
    log_before = len(server.log_text())
    for _ in range(200):
        reader, writer = os.pipe()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(path)
            head = b"GET /handover_nonce/ws HTTP/1.1\r\n\r\n"
            conn.sendmsg([len(head).to_bytes(4, "big") + head],
                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [reader, writer]))])
            assert conn.recv(1) == b""  # refused: closed without an answer
        os.close(reader)
        os.close(writer)
    assert open_descriptors(worker) <= baseline + 2, (baseline, open_descriptors(worker))
    log = server.log_text()[log_before:]
    assert f"refused a handed connection: process {os.getpid()} is not a worker of this server's master" in log
    assert "Traceback" not in log
    assert reconnect(server, token)  # the worker still serves


def test_the_private_directory_and_its_sockets_are_the_servers_alone(server):
    directory = state_dir.default_state_dir()
    info = os.stat(directory)
    assert info.st_uid == os.geteuid() and info.st_mode & 0o777 == 0o700
    wait_for(lambda: len(server.worker_pids()) == WORKERS and all(
        os.path.exists(handover.socket_path(directory, key)) for key in keys_of(server)))
    for key in keys_of(server):
        assert os.stat(handover.socket_path(directory, key)).st_uid == os.geteuid()
    planted = os.path.join(directory, "planted.sock")
    squatter = Squatter([planted])
    assert squatter.stop() == []  # another user cannot create a name in it
    assert not os.path.exists(planted)
