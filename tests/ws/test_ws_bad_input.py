"""Malformed client input (contract 5.4): the offending connection is closed with a valid
close code (1002, where upstream sends the non-RFC 10000/10001), nothing else is affected."""
from __future__ import annotations

import json

import pytest

from tests.support.bokeh_version import BOKEH4
from tests.support.wire import ROUNDTRIP, BokehWS, page_token


def _h(msgtype: str | None, **extra) -> str:
    header = {"msgid": "C0000000000000000000000000000BAD", **extra}
    if msgtype is not None:
        header["msgtype"] = msgtype
    return json.dumps(header)


_EVENTS = json.dumps({"events": []})

CASES = {
    "garbage-header": ["this is not json", "{}", "{}"],
    "header-json-not-object": ["[1, 2, 3]", "{}", "{}"],
    "header-without-msgtype": [_h(None), "{}", "{}"],
    "non-json-metadata": [_h("PULL-DOC-REQ"), "{not json", "{}"],
    "non-json-content": [_h("PATCH-DOC"), "{}", "{not json"],
    "binary-header": [b"\x00\x01\x02binary"],
    "binary-content": [_h("PULL-DOC-REQ"), "{}", b"{}"],
    "malformed-buffer-header": [_h("PATCH-DOC", num_buffers=1), "{}", _EVENTS, json.dumps({"name": "0"}), b"xx"],
    "buffer-header-extra-key": [_h("PATCH-DOC", num_buffers=1), "{}", _EVENTS,
                                json.dumps({"id": "0", "x": 1}), b"xx"],
    "text-buffer-payload": [_h("PATCH-DOC", num_buffers=1), "{}", _EVENTS, json.dumps({"id": "0"}), "text"],
    "server-only-ACK": [_h("ACK"), "{}", "{}"],
    "server-only-OK": [_h("OK", reqid="p1"), "{}", "{}"],
    "server-only-ERROR": [_h("ERROR", reqid="p1"), "{}", json.dumps({"text": "x", "traceback": None})],
    "server-only-PULL-DOC-REPLY": [_h("PULL-DOC-REPLY", reqid="p1"), "{}", "{}"],
    "unknown-msgtype": [_h("FOO"), "{}", "{}"],
}
if BOKEH4:  # the same mistakes in Bokeh 4's envelope (the cases above are not envelopes at all)
    def _envelope(msgtype: str = "PATCH-DOC", **fields) -> str:
        return json.dumps({"header": json.loads(_h(msgtype)), "content": {"events": []}, "buffers": [], **fields})

    CASES.update({
        "envelope-unknown-msgtype": [_envelope("FOO")],
        "envelope-buffers-not-a-list": [_envelope(buffers={"0": 1})],
        "envelope-text-buffer-payload": [_envelope(buffers=["0"]), "text"],
        "envelope-server-info-req": [_envelope("SERVER-INFO-REQ")],
    })


@pytest.mark.parametrize("frames", list(CASES.values()), ids=list(CASES))
def test_bad_input_closes_with_protocol_error_and_server_carries_on(server, connect, frames):
    bystander = connect(server)  # another session, already open
    victim = connect(server)
    victim.pull()
    victim.send_frames(frames)
    code, reason = victim.wait_closed()
    assert code is not None and 1000 <= code <= 4999, (code, reason)
    assert code == 1002, (code, reason)
    assert "Traceback" not in reason

    # the other session's open connection is unaffected
    assert bystander.pull().msgtype == "PULL-DOC-REPLY"
    bystander.barrier()
    # and a brand-new session (page + websocket + pull) is served
    fresh = connect(server)
    assert fresh.pull().content["doc"]["title"] == "Hello"


def test_extra_buffers_on_pull_are_ignored(server, connect):
    ws = connect(server)
    msgid = ws.send("PULL-DOC-REQ", {}, buffers=[("0", b"unused")])
    reply = ws.recv()
    assert reply.msgtype == "PULL-DOC-REPLY" and reply.reqid == msgid


def test_two_messages_back_to_back_are_both_answered(server, connect):
    ws = connect(server)
    first = ws.send(ROUNDTRIP[0])
    second = ws.send("PULL-DOC-REQ")
    replies = [ws.recv(), ws.recv()]
    assert [(r.msgtype, r.reqid) for r in replies] == [(ROUNDTRIP[1], first), ("PULL-DOC-REPLY", second)]


def test_victim_session_survives_for_a_new_connection(server, connect):
    """Closing a connection for bad input does not break its session for others."""
    token = page_token(server.url)
    other = connect(server, token=token)
    victim = connect(server, token=token)
    victim.send_frames(CASES["unknown-msgtype"])
    assert victim.wait_closed()[0] == 1002
    assert other.pull().msgtype == "PULL-DOC-REPLY"
    again = BokehWS(f"{server.ws_url}/hello/ws", token)
    try:
        assert again.pull().msgtype == "PULL-DOC-REPLY"
    finally:
        again.close()
