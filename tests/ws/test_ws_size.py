"""Message sizes: the incoming limit (1009), big buffers in both directions, 8 MB pulls."""
from __future__ import annotations

import select
import socket

import numpy as np
from bokeh.client import pull_session

from bokeh_wire import (
    TIMEOUT, BokehWS, decode_ndarray, map_entries, model_by_name, model_changed, model_changes, ndarray_ref,
    page_token,
)

LIMIT = 1_000_000  # TUNED_SETTINGS["websocket_max_message_size"]
UNDER = 112_500  # float64 values: 900,000 bytes


def _column_patch(source_id: str, array: np.ndarray) -> dict:
    return model_changed(source_id, "data", {"type": "map", "entries": [["x", ndarray_ref("0", array)]]})


def _source_x(reply_doc_msg) -> np.ndarray:
    source = model_by_name(reply_doc_msg.content["doc"], "src")
    return decode_ndarray(map_entries(source["attributes"]["data"])["x"], reply_doc_msg.buffers)


def test_message_over_limit_closes_with_1009(tuned_server, connect):
    bystander = connect(tuned_server)
    victim = connect(tuned_server, "ws_cds_app")
    source_id = model_by_name(victim.pull().content["doc"], "src")["id"]
    big = np.ones((LIMIT + 100_000) // 8)
    try:
        victim.patch(_column_patch(source_id, big), buffers=[("0", big.tobytes())])
    except OSError:
        pass  # the server may close while we are still writing
    code, reason = victim.wait_closed()
    assert code == 1009, (code, reason)
    assert bystander.pull().msgtype == "PULL-DOC-REPLY"
    assert connect(tuned_server).pull().msgtype == "PULL-DOC-REPLY"


def test_text_frame_over_limit_closes_with_1009(tuned_server, connect):
    victim = connect(tuned_server)
    try:
        victim.send_frames(['{"msgid": "x", "msgtype": "PULL-DOC-REQ", "pad": "' + "x" * LIMIT + '"}'])
    except OSError:
        pass
    code, reason = victim.wait_closed()
    assert code == 1009, (code, reason)


def test_binary_buffer_just_under_limit_arrives_whole(tuned_server, connect):
    token = page_token(tuned_server.url, "ws_cds_app")
    sender = connect(tuned_server, "ws_cds_app", token=token)
    watcher = connect(tuned_server, "ws_cds_app", token=token)
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
    assert np.array_equal(_source_x(connect(tuned_server, "ws_cds_app", token=token).pull()), values)


def test_client_sets_large_column_under_limit(tuned_server):
    url = f"{tuned_server.url}/ws_cds_app"
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
    assert len(reply.buffers[column["array"]["data"]["id"]]) == 8_000_000
    assert column["dtype"] == "float64" and column["shape"] == [1_000_000]
    assert np.array_equal(values, np.arange(1e6))
    ws.barrier()  # stream still in sync afterwards


def test_big_pull_with_bokeh_client(server):
    with pull_session(url=f"{server.url}/ws_bigdata_app") as session:
        got = session.document.get_model_by_name("big").data["x"]
    assert np.array_equal(np.asarray(got), np.arange(1e6))


def test_client_pings_during_big_reply_do_not_corrupt_stream(server, connect):
    """Pongs answered while an 8 MB reply is being written must not land inside its frames."""
    # a small receive buffer makes sure the server is still writing when the pings arrive
    ws = connect(server, "ws_bigdata_app", timeout=5,
                 sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 65536),))
    msgid = ws.send("PULL-DOC-REQ")
    readable, _, _ = select.select([ws.ws.sock], [], [], TIMEOUT)
    assert readable, "no reply started"
    for i in range(20):
        ws.ws.ping(str(i))
    reply = ws.recv()
    assert reply.reqid == msgid
    values, _ = _big_column(reply)
    assert np.array_equal(values, np.arange(1e6))
    ws.barrier()


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
