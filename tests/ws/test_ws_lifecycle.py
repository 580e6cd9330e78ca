"""Keep-alive pings and unused-session cleanup (contract 4.5, 6.7), on the tuned server
(keep_alive 200 ms, unused_session_lifetime 300 ms, check_unused_sessions 100 ms)."""
from __future__ import annotations

import time

from bokeh.client import pull_session
from bokeh.util.token import generate_jwt_token, get_session_id
from websocket import ABNF

from tests.support.wire import BokehWS


def test_keep_alive_pings_count_up_from_zero(tuned_server, connect):
    ws = connect(tuned_server)
    pings = []
    for _ in range(50):  # each read is bounded by the socket timeout
        frame = ws.ws.recv_data_frame(control_frame=True)[1]  # pings are answered with pongs
        assert frame.opcode in (ABNF.OPCODE_PING, ABNF.OPCODE_PONG), frame
        if frame.opcode == ABNF.OPCODE_PING:
            pings.append(frame.data)
        if len(pings) == 4:
            break
    assert pings == [b"0", b"1", b"2", b"3"]
    # answering pings keeps the connection alive and usable
    assert ws.pull().msgtype == "PULL-DOC-REPLY"


def test_each_connection_has_its_own_ping_counter(tuned_server, connect):
    first = connect(tuned_server)
    for _ in range(3):
        while first.ws.recv_data_frame(control_frame=True)[1].opcode != ABNF.OPCODE_PING:
            pass
    second = connect(tuned_server)
    while (frame := second.ws.recv_data_frame(control_frame=True)[1]).opcode != ABNF.OPCODE_PING:
        pass
    assert frame.data == b"0"


def _stamp(session) -> str:
    return session.document.get_model_by_name("stamp").text


def test_unused_session_is_discarded_after_its_websocket_closes(tuned_server):
    url = f"{tuned_server.url}/ws_stamp_app"
    with pull_session(url=url) as first:
        session_id, stamp = first.id, _stamp(first)
        # while a connection is open the session lives on: same document for a second client
        with pull_session(session_id=session_id, url=url) as second:
            assert _stamp(second) == stamp
    # no connection left: within lifetime + check interval the session must be gone.
    # Polling faster than the 300 ms lifetime would keep it alive, so poll every 0.6 s.
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.6)
        with pull_session(session_id=session_id, url=url) as again:
            fresh = _stamp(again)
        if fresh != stamp:
            break
        assert time.monotonic() < deadline, "session was not discarded within 10 s"


def test_session_with_open_connection_is_not_discarded(tuned_server, connect):
    holder = connect(tuned_server, "ws_stamp_app")
    stamp = [m["attributes"]["text"] for m in holder.pull().content["doc"]["roots"]]
    token = generate_jwt_token(get_session_id(holder.token), secret_key=None, signed=False)
    # well past lifetime + check interval; the holder keeps answering pings meanwhile
    deadline = time.monotonic() + 1.5
    probes = 0
    while time.monotonic() < deadline:
        frame = holder.ws.recv_data_frame(control_frame=True)[1]
        assert frame.opcode == ABNF.OPCODE_PING, frame
        probes += 1
        if probes % 3 == 0:
            with BokehWS(f"{tuned_server.ws_url}/ws_stamp_app/ws", token) as probe:
                doc = probe.pull().content["doc"]
            assert [m["attributes"]["text"] for m in doc["roots"]] == stamp


def test_silent_client_is_not_dropped_by_keep_alive(tuned_server, connect):
    """Contract 4.5: pongs are only recorded, no timeout closes a silent client (bokeh.client
    answers pings only while its IOLoop runs, i.e. during its own requests)."""
    ws = connect(tuned_server)
    time.sleep(1.0)  # five keep-alive intervals without reading, so without answering pings
    frames = []
    while True:
        frame = ws.ws.recv_data_frame(control_frame=True)[1]
        frames.append((frame.opcode, frame.data))
        assert frame.opcode != ABNF.OPCODE_CLOSE, f"closed by the server: {frames}"
        if len(frames) >= 4:  # the ones queued meanwhile, then a live one
            break
    assert ws.pull().msgtype == "PULL-DOC-REPLY"


def test_idle_bokeh_client_session_stays_connected(tuned_server):
    url = f"{tuned_server.url}/ws_stamp_app"
    with pull_session(url=url) as session:
        stamp = _stamp(session)
        time.sleep(1.0)  # idle, as a session held by a web view between requests
        session.force_roundtrip()  # a round trip on the idle connection (SERVER-INFO-REQ, Bokeh 4: SYNC)
        session.pull()
        assert _stamp(session) == stamp
