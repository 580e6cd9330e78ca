"""Message sizes: the incoming limit (1009), big buffers in both directions, 8 MB pulls."""
from __future__ import annotations

import json
import select
import socket
import struct

import numpy as np
from bokeh.client import pull_session
from websocket import ABNF

from bokeh_flask.app.apps.bokeh_compat import DOCUMENT_BUFFERS
from tests.support.bokeh_version import BOKEH4
from tests.support.wire import (
    TIMEOUT,
    BokehWS,
    Msg,
    decode_ndarray,
    map_entries,
    model_by_name,
    model_changed,
    model_changes,
    ndarray_ref,
    page_token,
)

LIMIT = 1_000_000  # LIMITED_SETTINGS["websocket_max_message_size"]
UNDER = 112_500  # float64 values: 900,000 bytes


def _column_patch(source_id: str, array: np.ndarray) -> dict:
    return model_changed(source_id, "data", {"type": "map", "entries": [["x", ndarray_ref("0", array)]]})


def _source_x(reply_doc_msg) -> np.ndarray:
    source = model_by_name(reply_doc_msg.content["doc"], "src")
    return decode_ndarray(map_entries(source["attributes"]["data"])["x"], reply_doc_msg.buffers)


def _send_oversized_buffer(server, connect, size: int) -> tuple[int | None, str]:
    victim = connect(server, "ws_cds_app")
    source_id = model_by_name(victim.pull().content["doc"], "src")["id"]
    big = np.ones(size // 8)
    try:
        victim.patch(_column_patch(source_id, big), buffers=[("0", big.tobytes())])
    except OSError:
        pass  # the server may close while we are still writing
    return victim.wait_closed()


def test_buffer_just_over_limit_closes_with_1009(limited_server, connect):
    bystander = connect(limited_server)
    code, reason = _send_oversized_buffer(limited_server, connect, LIMIT + 8)
    assert code == 1009, (code, reason)
    assert bystander.pull().msgtype == "PULL-DOC-REPLY"
    assert connect(limited_server).pull().msgtype == "PULL-DOC-REPLY"


def test_buffer_well_over_limit_close_code_reaches_client(limited_server, connect):
    """The client has sent 100 kB more than the server read when the limit trips; the
    1009 close frame must still reach it (closing the socket with unread input sends a
    TCP RST that makes the peer discard the close frame; bokeh serve/Tornado has the same
    problem)."""
    code, reason = _send_oversized_buffer(limited_server, connect, LIMIT + 100_000)
    assert code == 1009, (code, reason)


def test_text_frame_over_limit_closes_with_1009(limited_server, connect):
    victim = connect(limited_server)
    try:
        victim.send_frames(['{"msgid": "x", "msgtype": "PULL-DOC-REQ", "pad": "' + "x" * LIMIT + '"}'])
    except OSError:
        pass
    code, reason = victim.wait_closed()
    assert code == 1009, (code, reason)


def test_binary_buffer_just_under_limit_arrives_whole(limited_server, connect):
    token = page_token(limited_server.url, "ws_cds_app")
    sender = connect(limited_server, "ws_cds_app", token=token)
    watcher = connect(limited_server, "ws_cds_app", token=token)
    source_id = model_by_name(sender.pull().content["doc"], "src")["id"]
    values = np.random.default_rng(1).random(UNDER)
    assert len(values.tobytes()) == 900_000

    reply, _ = sender.request("PATCH-DOC", {"events": [_column_patch(source_id, values)]},
                              buffers=[("0", values.tobytes())])
    assert reply.msgtype == "OK", reply

    # forwarded to the other connection with its buffer intact
    forwarded = [m for m in watcher.barrier() if model_changes([m], "data", source_id)]
    assert len(forwarded) == 1
    event = model_changes(forwarded, "data", source_id)[0]
    got = decode_ndarray(map_entries(event["new"])["x"], forwarded[0].buffers)
    assert np.array_equal(got, values)
    # and stored in the server document
    assert np.array_equal(_source_x(connect(limited_server, "ws_cds_app", token=token).pull()), values)


def test_client_sets_large_column_under_limit(limited_server):
    url = f"{limited_server.url}/ws_cds_app"
    values = np.random.default_rng(2).random(UNDER)
    with pull_session(url=url) as session:
        session.document.get_model_by_name("src").data = {"x": values}
        session.force_roundtrip()
        assert session.connected
        with pull_session(session_id=session.id, url=url) as check:
            got = check.document.get_model_by_name("src").data["x"]
    assert np.array_equal(np.asarray(got), values)


# -- big pulls (default 20 MiB limit only applies to incoming messages) -------------------------

def _big_column(reply) -> tuple[np.ndarray, dict]:
    source = model_by_name(reply.content["doc"], "big")
    column = map_entries(source["attributes"]["data"])["x"]
    return decode_ndarray(column, reply.buffers), column


def test_big_pull_arrives_whole(server, connect):
    ws = connect(server, "ws_bigdata_app")
    reply = ws.pull()
    values, column = _big_column(reply)
    if DOCUMENT_BUFFERS:
        assert len(reply.buffers[column["array"]["data"]["id"]]) == 8_000_000
    else:  # Bokeh < 3.9 inlines a pulled document's arrays as base64
        assert not reply.buffers and isinstance(column["array"]["data"], str)
    assert column["dtype"] == "float64" and column["shape"] == [1_000_000]
    assert np.array_equal(values, np.arange(1e6))
    ws.barrier()  # stream still in sync afterwards


def test_big_pull_with_bokeh_client(server):
    with pull_session(url=f"{server.url}/ws_bigdata_app") as session:
        got = session.document.get_model_by_name("big").data["x"]
    assert np.array_equal(np.asarray(got), np.arange(1e6))


#: The text frames a message starts with: Bokeh 3's header, metadata and content, Bokeh 4's envelope.
PARTS = 1 if BOKEH4 else 3


def _head(text: bytes) -> tuple[dict, int]:
    """A message's header and its number of buffers, from its first frame."""
    first = json.loads(text)
    if BOKEH4:
        return first["header"], len(first["buffers"])
    return first, first.get("num_buffers", 0)


def _server_frames(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Parse unmasked server frames; (complete frames, bytes consumed)."""
    frames, i = [], 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        assert b0 & 0x70 == 0, f"reserved bits set at byte {i}: stream corrupted"
        assert b1 & 0x80 == 0, "server frames must not be masked"
        assert b0 & 0x80, "fragmented server frame"
        length, head = b1 & 0x7F, 2
        if length == 126:
            if i + 4 > len(data):
                break
            length, head = struct.unpack("!H", data[i + 2:i + 4])[0], 4
        elif length == 127:
            if i + 10 > len(data):
                break
            length, head = struct.unpack("!Q", data[i + 2:i + 10])[0], 10
        if i + head + length > len(data):
            break
        frames.append((b0 & 0x0F, data[i + head:i + head + length]))
        i += head + length
    return frames, i


def test_client_pings_during_big_reply_do_not_corrupt_stream(server, connect):
    """Pongs answered while an 8 MB reply is being written must go between frames, not
    inside them, and every ping is answered (RFC 6455 5.5.2/5.5.3)."""
    # a small receive buffer keeps the server blocked in the middle of writing the reply
    ws = connect(server, "ws_bigdata_app", timeout=5,
                 sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 65536),))
    sock = ws.ws.sock
    msgid = ws.send("PULL-DOC-REQ")
    assert select.select([sock], [], [], TIMEOUT)[0], "no reply started"
    data, sent, frames, reply_done = b"", [], [], False
    for round_ in range(10_000):
        if round_ % 4 == 0 and len(sent) < 40:
            sent.append(str(len(sent)).encode())
            ws.ws.ping(sent[-1])  # while the server is mid-write
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection"
        data += chunk
        frames, used = _server_frames(data)
        data_frames = [f for f in frames if f[0] in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY)]
        if not reply_done and len(data_frames) >= PARTS:
            header, buffer_count = _head(data_frames[0][1])
            reply_done = len(data_frames) == PARTS + (1 if BOKEH4 else 2) * buffer_count
        pongs = [payload for op, payload in frames if op == ABNF.OPCODE_PONG]
        if reply_done and used == len(data) and sent and sent[-1] in pongs:
            break
    else:
        raise AssertionError("reply did not complete")
    assert [op for op, _ in frames if op not in (ABNF.OPCODE_PONG,)][:PARTS] == [ABNF.OPCODE_TEXT] * PARTS
    assert header["reqid"] == msgid
    if BOKEH4:
        envelope = json.loads(data_frames[0][1])
        reply = Msg(header, None, envelope["content"],
                    {i: payload for i, (_, payload) in zip(envelope["buffers"], data_frames[1:])})
    else:
        json_parts = [json.loads(p) for op, p in data_frames[:3]]
        buffers = {json.loads(data_frames[k][1])["id"]: data_frames[k + 1][1]
                   for k in range(3, len(data_frames), 2)}
        reply = Msg(header, json_parts[1], json_parts[2], buffers)
    values, _ = _big_column(reply)
    assert np.array_equal(values, np.arange(1e6))
    assert set(pongs) <= set(sent)
    ws.barrier()  # the stream is still in step


def test_two_big_pulls_on_two_connections_at_once(server):
    token = page_token(server.url, "ws_bigdata_app")
    a = BokehWS(f"{server.ws_url}/ws_bigdata_app/ws", token)
    b = BokehWS(f"{server.ws_url}/ws_bigdata_app/ws", token)
    try:
        ids = (a.send("PULL-DOC-REQ"), b.send("PULL-DOC-REQ"))
        for ws, msgid in zip((a, b), ids):
            reply = ws.recv()
            assert reply.reqid == msgid
            assert np.array_equal(_big_column(reply)[0], np.arange(1e6))
    finally:
        a.close()
        b.close()
