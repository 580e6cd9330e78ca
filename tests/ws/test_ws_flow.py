"""The normal message flow (contract 5.2, 5.3, 5.5) against hello.py and ws_addroot_app.py."""
from __future__ import annotations

import re

import bokeh

from tests.support.bokeh_version import BOKEH4, bokeh3_only, bokeh4_only
from tests.support.wire import BokehWS, button_click, model_by_name, model_changed, model_changes, page_token


def _ids(ws: BokehWS) -> dict[str, str]:
    doc = ws.pull().content["doc"]
    return {name: model_by_name(doc, name)["id"] for name in ("ti", "status", "btn")}


def test_first_message_is_ack(server):
    token = page_token(server.url)
    with BokehWS(f"{server.ws_url}/hello/ws", token, expect_ack=False) as ws:
        first = ws.recv()
    assert first.msgtype == "ACK"
    assert "reqid" not in first.header
    assert first.header["msgid"]
    assert first.content == {} and first.buffers == {}
    assert first.metadata is None if BOKEH4 else first.metadata == {}  # Bokeh 4 has no metadata part


def test_pull_doc_reply_carries_reqid_and_document(server, connect):
    ws = connect(server)
    msgid = ws.send("PULL-DOC-REQ")
    reply = ws.recv()
    assert reply.msgtype == "PULL-DOC-REPLY"
    assert reply.reqid == msgid
    doc = reply.content["doc"]
    assert doc["version"] == bokeh.__version__
    assert doc["title"] == "Hello"
    assert len(doc["roots"]) == 1
    assert model_by_name(doc, "ti")["attributes"]["value"] == "a"
    assert model_by_name(doc, "status")["attributes"]["text"] == "hi"
    assert model_by_name(doc, "btn")["name"] == "Button"


@bokeh4_only
def test_sync_is_answered_ok(server, connect):
    """Bokeh 4's client round trip (``force_roundtrip``) replaces SERVER-INFO-REQ."""
    ws = connect(server)
    msgid = ws.send("SYNC")
    reply = ws.recv()
    assert (reply.msgtype, reply.reqid, reply.content) == ("OK", msgid, {})


@bokeh3_only
def test_server_info_reply(server, connect):
    ws = connect(server)
    msgid = ws.send("SERVER-INFO-REQ")
    reply = ws.recv()
    assert reply.msgtype == "SERVER-INFO-REPLY"
    assert reply.reqid == msgid
    assert reply.content == {"version_info": {"bokeh": bokeh.__version__, "server": bokeh.__version__}}


def test_patch_doc_fan_out_and_echo_suppression(server, connect):
    token = page_token(server.url)
    a = connect(server, token=token)
    b = connect(server, token=token)
    ids = _ids(a)
    assert _ids(b) == ids  # same token, same session, same document

    msgid = a.patch(model_changed(ids["ti"], "value", "hello"))
    seen_a = a.recv_until(lambda m: m.reqid == msgid)
    reply = seen_a[-1]
    assert reply.msgtype == "OK", reply
    # the server callback's change reaches the sender before its OK
    assert [e["new"] for e in model_changes(seen_a[:-1], "text", ids["status"])] == ["got hello"]
    # ... and the sender's own change is not echoed (not before OK, not after)
    seen_a += a.barrier()
    assert model_changes(seen_a, "value", ids["ti"]) == []

    seen_b = b.barrier()
    assert [e["new"] for e in model_changes(seen_b, "value", ids["ti"])] == ["hello"]
    assert [e["new"] for e in model_changes(seen_b, "text", ids["status"])] == ["got hello"]

    # the server document has both changes
    doc = b.pull().content["doc"]
    assert model_by_name(doc, "ti")["attributes"]["value"] == "hello"
    assert model_by_name(doc, "status")["attributes"]["text"] == "got hello"


def test_button_click_reaches_every_connection_including_sender(server, connect):
    token = page_token(server.url)
    a = connect(server, token=token)
    b = connect(server, token=token)
    ids = _ids(a)

    msgid = a.patch(button_click(ids["btn"]))
    seen_a = a.recv_until(lambda m: m.reqid == msgid)
    assert seen_a[-1].msgtype == "OK", seen_a[-1]
    assert [e["new"] for e in model_changes(seen_a, "text", ids["status"])] == ["clicked"]
    seen_b = b.barrier()
    assert [e["new"] for e in model_changes(seen_b, "text", ids["status"])] == ["clicked"]


def test_patch_naming_unknown_model_answers_error_without_traceback(server, connect):
    ws = connect(server)
    msgid = ws.patch(model_changed("nope", "value", "x"))
    reply = ws.recv()
    assert reply.msgtype == "ERROR", reply
    assert reply.reqid == msgid
    assert "nope" in reply.content["text"]
    assert "Traceback" not in reply.content["text"]
    assert reply.content["traceback"] is None


def test_connection_stays_usable_after_error_reply(server, connect):
    ws = connect(server)
    ids = _ids(ws)
    reply, _ = ws.request("PATCH-DOC", {"events": [model_changed("nope", "value", "x")]})
    assert reply.msgtype == "ERROR", reply
    # a pull works and a valid patch is still applied (and runs the callback)
    assert model_by_name(ws.pull().content["doc"], "ti")["attributes"]["value"] == "a"
    ok, _ = ws.request("PATCH-DOC", {"events": [model_changed(ids["ti"], "value", "after")]})
    assert ok.msgtype == "OK", ok
    assert model_by_name(ws.pull().content["doc"], "status")["attributes"]["text"] == "got after"


def test_new_root_from_server_callback_reaches_all_connections_in_full(server, connect):
    token = page_token(server.url, "ws_addroot_app")
    a = connect(server, "ws_addroot_app", token=token)
    b = connect(server, "ws_addroot_app", token=token)
    c = connect(server, "ws_addroot_app", token=token)
    button = model_by_name(a.pull().content["doc"], "add_root")["id"]

    msgid = a.patch(button_click(button))
    seen_a = a.recv_until(lambda m: m.reqid == msgid)
    assert seen_a[-1].msgtype == "OK", seen_a[-1]
    received = {"a": seen_a[:-1], "b": b.barrier(), "c": c.barrier()}

    patches = {}
    for name, msgs in received.items():
        added = [(m, e) for m in msgs for e in m.events if e["kind"] == "RootAdded"]
        assert len(added) == 1, (name, msgs)
        message, event = added[0]
        model = event["model"]
        # a full definition, not a bare {"id": ...} reference (upstream quirk, contract 5.5)
        assert model.get("type") == "object" and model.get("name") == "Div", (name, model)
        assert model["attributes"]["text"] == "added by server", (name, model)
        assert model["attributes"]["name"] == "added"
        patches[name] = message
    # serialised once: identical messages to every connection
    assert patches["a"].header == patches["b"].header == patches["c"].header
    assert patches["a"].content == patches["b"].content == patches["c"].content


def test_callback_that_raises_is_logged_with_its_traceback_and_line(server, connect):
    """The app's error: the client gets ERROR without a traceback, the server log the full
    traceback down to the app's file and line, at the default level. A patch Bokeh refuses
    (unknown model) stays one line."""
    ws = connect(server, "ws_raising_app")
    box = model_by_name(ws.pull().content["doc"], "box")["id"]
    offset = len(server.log_text())
    msgid = ws.patch(model_changed(box, "value", "boom"))
    reply = ws.recv_until(lambda m: m.reqid == msgid)[-1]
    assert reply.msgtype == "ERROR" and reply.content["traceback"] is None
    assert "ZeroDivisionError" in reply.content["text"]
    server.wait_for_log("ZeroDivisionError: division by zero")
    log = server.log_text()[offset:]
    assert "Traceback (most recent call last)" in log
    assert re.search(r'ws_raising_app\.py", line 10, in on_value', log), log[-2000:]

    offset = len(server.log_text())
    msgid = ws.patch(model_changed("nope", "value", "x"))
    assert ws.recv_until(lambda m: m.reqid == msgid)[-1].msgtype == "ERROR"
    ws.barrier()
    assert "Traceback" not in server.log_text()[offset:]


def test_next_tick_coroutine_a_message_scheduled_runs_before_the_next_message(server, connect):
    """Two patches in one socket write (as a browser sends an event and the data change
    behind it): the unlocked next-tick coroutine the first one scheduled has run before the
    second is applied, as under ``bokeh serve``. Panel's Tabulator ``on_edit`` depends on it."""
    ws = connect(server, "ws_nexttick_app")
    doc = ws.pull().content["doc"]
    button, field, report = (model_by_name(doc, name)["id"] for name in ("btn", "field", "report"))
    _, click = ws.message_frames("PATCH-DOC", {"events": [button_click(button)]})
    msgid, change = ws.message_frames("PATCH-DOC", {"events": [model_changed(field, "value", "x")]})
    ws.send_in_one_write(click + change)
    seen = ws.recv_until(lambda m: m.reqid == msgid)
    assert [e["new"] for e in model_changes(seen, "text", report)] == ["x: 1 click(s) recorded before"]
