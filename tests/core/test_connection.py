"""bokeh_flask.app.sessions.connection.ServerConnection: fragment assembly, protocol errors, outgoing frames.

Malformed input is written by hand in the installed Bokeh's format: Bokeh 3's header,
metadata and content frames (``{"id"}`` text frames before buffers), or Bokeh 4's one
``{"header", "content", "buffers"}`` envelope followed by the binary buffers.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.document.events import ColumnDataChangedEvent
from bokeh.models import ColumnDataSource, Div
from bokeh.protocol.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bokeh_flask.app.apps.bokeh_compat import message_frames
from bokeh_flask.app.sessions.connection import ConnectionState, ServerConnection
from bokeh_flask.app.sessions.errors import WebSocketClose
from tests.support.bokeh_version import BOKEH4, bokeh3_only, bokeh4_only, client_message, text_frames
from tests.support.core import FakeTransport, make_core, new_session

_core = make_core({"/x": lambda doc: doc.add_root(Div(text="conn"))})
_context = _core.applications["/x"]
_session = new_session(_core, session_id="connection-tests")


def connection(transport=None) -> ServerConnection:
    return ServerConnection(_context, _session, transport or FakeTransport())


def feed(conn, frames):
    results = [conn.receive_fragment(f) for f in frames]
    return results


@bokeh3_only
def test_valid_three_frame_message():
    conn = connection()
    msg = client_message("PULL-DOC-REQ")
    results = feed(conn, [msg.header_json, msg.metadata_json, msg.content_json])
    assert results[:2] == [None, None]
    assert isinstance(results[2], Message)
    assert results[2].msgtype == "PULL-DOC-REQ"
    assert results[2].header["msgid"] == msg.header["msgid"]
    # the receiver is ready for the next message
    again = client_message("SERVER-INFO-REQ")
    assert feed(conn, [again.header_json, again.metadata_json, again.content_json])[2].msgtype == "SERVER-INFO-REQ"


@bokeh4_only
def test_valid_envelope_message():
    conn = connection()
    msg = client_message("PULL-DOC-REQ")
    [result] = feed(conn, message_frames(msg))
    assert isinstance(result, Message) and result.msgtype == "PULL-DOC-REQ"
    assert result.header["msgid"] == msg.header["msgid"]
    # the receiver is ready for the next message
    assert feed(conn, message_frames(client_message("SYNC")))[0].msgtype == "SYNC"


def test_message_with_buffers():
    doc = Document()
    source = ColumnDataSource(data={"x": np.arange(5.0), "y": np.arange(5) * 2})
    doc.add_root(source)
    # a patch carries binary buffers on every Bokeh (a pushed document only from 3.9)
    msg = client_message("PATCH-DOC", [ColumnDataChangedEvent(doc, source, "data")])
    frames = message_frames(msg)
    assert len(msg.buffers) >= 1 and len(frames) == (1 + len(msg.buffers) if BOKEH4 else 3 + 2 * len(msg.buffers))
    conn = connection()
    results = feed(conn, frames)
    assert all(r is None for r in results[:-1])
    assert isinstance(results[-1], Message) and results[-1].msgtype == "PATCH-DOC"
    assert len(results[-1].buffers) == len(msg.buffers)


@bokeh3_only
def test_client_style_num_buffers_zero_and_absent():
    conn = connection()
    header = json.dumps({"msgid": "ABCDEF", "msgtype": "PULL-DOC-REQ", "num_buffers": 0})
    assert isinstance(feed(conn, [header, "{}", "{}"])[2], Message)
    header = json.dumps({"msgid": "ABCDEG", "msgtype": "PULL-DOC-REQ"})
    assert isinstance(feed(conn, [header, "{}", "{}"])[2], Message)


def assert_protocol_close(frames):
    conn = connection()
    with pytest.raises(WebSocketClose) as err:
        feed(conn, frames)
    assert err.value.code == 1002
    assert err.value.reason and "Traceback" not in err.value.reason and len(err.value.reason) <= 120
    return err.value


@pytest.mark.parametrize("frames", [
    pytest.param(["not json", "{}", "{}"], id="header-not-json"),
    pytest.param(['{"msgid": "1", "msgtype": "FOO"}', "{}", "{}"], id="unknown-msgtype"),
    pytest.param(['{"msgid": "1"}', "{}", "{}"], id="no-msgtype"),
    pytest.param(['{"msgid": "1", "msgtype": "PULL-DOC-REQ"}', "nope", "{}"], id="metadata-not-json"),
    pytest.param(['{"msgid": "1", "msgtype": "PULL-DOC-REQ"}', "{}", "{"], id="content-not-json"),
    pytest.param(["[1, 2]", "{}", "{}"], id="header-is-a-list"),
    pytest.param(["42", "{}", "{}"], id="header-is-a-number"),
    pytest.param(['{"msgtype": ["x"]}', "{}", "{}"], id="msgtype-unhashable"),
    pytest.param(['{"msgid": "1", "msgtype": "PULL-DOC-REQ", "num_buffers": 1}', "{}", "{}",
                  '{"id": "0", "extra": 1}'], id="bad-buffer-header-keys"),
    pytest.param(['{"msgid": "1", "msgtype": "PULL-DOC-REQ", "num_buffers": 1}', "{}", "{}",
                  '{"notid": "0"}'], id="buffer-header-without-id"),
    pytest.param(['{"msgid": "1", "msgtype": "PULL-DOC-REQ", "num_buffers": 1}', "{}", "{}",
                  "not json"], id="buffer-header-not-json"),
    pytest.param(['{"msgid": "1", "msgtype": "PULL-DOC-REQ", "num_buffers": 1}', "{}", "{}",
                  '["id"]', b"x"], id="buffer-header-list"),
])
@bokeh3_only
def test_garbage_raises_protocol_close(frames):
    assert_protocol_close(frames)


@bokeh3_only
@pytest.mark.parametrize("position", [0, 1, 2])
def test_binary_where_text_expected(position):
    frames = ['{"msgid": "1", "msgtype": "PULL-DOC-REQ"}', "{}", "{}"]
    frames[position] = frames[position].encode()
    close = assert_protocol_close(frames)
    assert "binary" in close.reason


@bokeh3_only
def test_binary_buffer_header_and_text_buffer_payload():
    head = '{"msgid": "1", "msgtype": "PULL-DOC-REQ", "num_buffers": 1}'
    assert "binary" in assert_protocol_close([head, "{}", "{}", b'{"id": "0"}']).reason
    assert "text" in assert_protocol_close([head, "{}", "{}", '{"id": "0"}', "payload as text"]).reason


@bokeh3_only
def test_too_many_buffers_for_header():
    head = '{"msgid": "1", "msgtype": "PULL-DOC-REQ", "num_buffers": "two"}'
    conn = connection()
    try:
        results = feed(conn, [head, "{}", "{}", '{"id": "0"}', b"x"])
    except WebSocketClose as close:
        assert close.code == 1002
    else:
        assert results[-1] is None or isinstance(results[-1], Message)


@bokeh3_only
@pytest.mark.parametrize("where", ["header", "buffer-header"])
def test_deeply_nested_json_is_a_protocol_close(where):
    """A 2 KB text frame of nested arrays must close with 1002, not escape as RecursionError."""
    deep = "[" * 2000
    if where == "header":
        frames = [deep, "{}", "{}"]
    else:
        frames = ['{"msgid": "1", "msgtype": "PULL-DOC-REQ", "num_buffers": 1}', "{}", "{}", deep]
    assert_protocol_close(frames)



_HEAD = {"msgid": "1", "msgtype": "PULL-DOC-REQ"}


def _envelope(**fields) -> str:
    return json.dumps({"header": _HEAD, "content": {}, "buffers": [], **fields})


@bokeh4_only
@pytest.mark.parametrize("frames", [
    pytest.param(["not json"], id="envelope-not-json"),
    pytest.param([text_frames("FOO")[0]], id="unknown-msgtype"),
    pytest.param([_envelope(header={"msgid": "1"})], id="no-msgtype"),
    pytest.param([json.dumps({"header": _HEAD, "content": {}})], id="no-buffers-key"),
    pytest.param([json.dumps({"header": _HEAD, "buffers": []})], id="no-content"),
    pytest.param([_envelope(extra=1)], id="extra-key"),
    pytest.param([_envelope(buffers="0")], id="buffers-not-a-list"),
    pytest.param([_envelope(content=[1])], id="content-is-a-list"),
    pytest.param(["[1, 2]"], id="envelope-is-a-list"),
    pytest.param([_envelope(header={"msgtype": ["x"]})], id="msgtype-unhashable"),
    pytest.param([_envelope().encode()], id="binary-envelope"),
    pytest.param([_envelope(buffers=["0"]), "payload as text"], id="text-buffer-payload"),
    pytest.param(["[" * 2000], id="deeply-nested"),
])
def test_garbage_envelope_raises_protocol_close(frames):
    assert_protocol_close(frames)


def test_outgoing_frames_and_states():
    t = FakeTransport()
    conn = connection(t)
    conn.send_ack()
    assert t.msgtypes() == ["ACK"]
    ok = conn.ok(client_message("PULL-DOC-REQ"))
    assert ok.msgtype == "OK"
    err = conn.error(client_message("PULL-DOC-REQ"), "bad")
    assert err.msgtype == "ERROR" and err.content["text"] == "bad"
    conn.send_ping()
    conn.send_ping()
    assert t.pings == [b"0", b"1"]
    conn.detach_session()
    conn.detach_session()
    assert conn.state is ConnectionState.CLOSED
    conn.send_ack()
    conn.send_ping()
    assert t.msgtypes() == ["ACK"] and t.pings == [b"0", b"1"]


def test_failed_write_detaches():
    t = FakeTransport(alive=False)
    _session.subscribe(conn := connection(t))
    conn.send_ack()
    assert conn.state is ConnectionState.CLOSED
    assert conn not in _session._connections


def test_frames_of_message_with_buffers():
    doc = Document()
    doc.add_root(ColumnDataSource(data={"x": np.arange(3.0)}))
    msg = client_message("PULL-DOC-REPLY", "req", doc)
    frames = message_frames(msg)
    if BOKEH4:
        envelope = json.loads(frames[0])
        assert set(envelope) == {"header", "content", "buffers"} and len(envelope["buffers"]) == len(frames) - 1
        assert frames[1:] and all(isinstance(payload, bytes) for payload in frames[1:])
        return
    assert all(isinstance(f, str) for f in frames[:3])
    for head, payload in zip(frames[3::2], frames[4::2]):
        assert isinstance(head, str) and set(json.loads(head)) == {"id"}
        assert isinstance(payload, bytes)


# -- property: any fragment sequence yields Message, None or WebSocketClose ---------------

_msgtypes = st.sampled_from(["PULL-DOC-REQ", "PUSH-DOC", "PATCH-DOC", "SERVER-INFO-REQ", "ACK", "OK",
                             "ERROR", "PULL-DOC-REPLY", "SERVER-INFO-REPLY", "FOO", ""])
_json_scalar = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=5)
_json_any = st.recursive(_json_scalar, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
_header = st.fixed_dictionaries(
    {"msgtype": _msgtypes | _json_any},
    optional={"msgid": _json_any, "num_buffers": st.integers(-1, 3) | _json_any, "reqid": _json_any},
).map(json.dumps)
_buffer_header = st.one_of(
    st.fixed_dictionaries({"id": _json_any}),
    st.dictionaries(st.sampled_from(["id", "x"]), _json_any, max_size=2),
).map(json.dumps)
_envelope_fragment = st.fixed_dictionaries(
    {"header": _json_any | st.fixed_dictionaries({"msgtype": _msgtypes, "msgid": _json_any})},
    optional={"content": _json_any, "buffers": st.lists(_json_any, max_size=3) | _json_any},
).map(json.dumps)
_fragment = st.one_of(
    st.text(max_size=40), st.binary(max_size=40), _header, _buffer_header, _envelope_fragment,
    st.sampled_from(["{}", "[]", "null", '{"events": []}', '{"doc": {}}', '{"doc": null}']),
    _json_any.map(json.dumps),
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fragments=st.lists(_fragment, max_size=12))
def test_fragments_only_produce_message_none_or_close(fragments):
    conn = connection()
    for fragment in fragments:
        try:
            result = conn.receive_fragment(fragment)
        except WebSocketClose as close:
            assert 1000 <= close.code <= 4999
            assert isinstance(close.reason, str) and len(close.reason) <= 120
            return
        assert result is None or isinstance(result, Message)
