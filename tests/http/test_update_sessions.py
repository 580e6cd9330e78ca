"""Bokeh 3.10's server APIs in our sessions: ``update_sessions`` from a Flask route reaches
every connection of every live session of the app, and a session whose update raises is
logged with its app and session while the others still get theirs; ``doc.locked_callback``
called from a thread reaches every connection of its session."""
from __future__ import annotations

import pytest
import requests
from bokeh.document import Document

from tests.support.servers import BIN, ROOT, free_port, spawn
from tests.support.wire import BokehWS, model_by_name, model_changed, model_changes, page_token

HOST = ROOT / "tests" / "http" / "apps" / "update_host.py"


@pytest.fixture(scope="module")
def host():
    port = free_port()
    server = spawn("update-host", [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b",
                                   f"127.0.0.1:{port}", "--chdir", str(HOST.parent), "update_host:app"],
                   port, {"PYTHONUNBUFFERED": "1", "PATH": str(BIN)}, ready=lambda status: status == 200,
                   ready_path="/health")
    yield server
    server.stop()


def texts_seen(ws: BokehWS, div_id: str, until: str) -> list[str]:
    messages = ws.recv_until(lambda m: any(c["new"] == until for c in model_changes([m], "text", div_id)))
    return [c["new"] for c in model_changes(messages, "text", div_id)]


def test_update_sessions_reaches_every_connection_of_every_session(host):
    tokens = [page_token(host.url, "target") for _ in range(3)]
    sockets = [BokehWS(f"{host.ws_url}/target/ws", token) for token in tokens]
    sockets.append(BokehWS(f"{host.ws_url}/target/ws", tokens[0]))  # a second tab of session 0
    try:
        divs = [model_by_name(ws.pull().content["doc"], "value")["id"] for ws in sockets]
        refusing = sockets[2]
        refusing.patch(model_changed(divs[2], "text", "refuse"))
        refusing.barrier()
        log_before = len(host.log_text())
        answer = requests.post(host.url + "/push", data={"value": "42"}, timeout=30)
        assert answer.status_code == 200 and answer.json() == {"updated": 2}
        for ws, div in zip((sockets[0], sockets[1], sockets[3]), (divs[0], divs[1], divs[3])):
            assert texts_seen(ws, div, "42")[-1] == "42"
        host.wait_for_log("update_sessions: the update failed")
        log = host.log_text()[log_before:]
        assert "update_sessions: the update failed for session" in log and "of app /target" in log
        assert "this session refuses updates" in log
    finally:
        for ws in sockets:
            ws.close()


@pytest.mark.skipif(not hasattr(Document, "locked_callback"), reason="Bokeh 3.10 added locked callbacks")
def test_a_locked_callback_from_a_thread_reaches_every_connection(host):
    token = page_token(host.url, "target")
    first, second = BokehWS(f"{host.ws_url}/target/ws", token), BokehWS(f"{host.ws_url}/target/ws", token)
    try:
        doc = first.pull().content["doc"]
        second.pull()
        div, start = model_by_name(doc, "value")["id"], model_by_name(doc, "start")["id"]
        first.patch(model_changed(start, "value", "go"))
        assert texts_seen(second, div, "go-2") == ["go-0", "go-1", "go-2"]
        assert texts_seen(first, div, "go-2")[-1] == "go-2"
    finally:
        first.close()
        second.close()
