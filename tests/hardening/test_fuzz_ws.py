"""Property-based fuzzing of the websocket protocol against one real gunicorn server.

Two generators, both against the same server (module scope, ``hard_fuzz.py`` + ``hello.py``):

* frame sequences: half of them well-framed client messages with random contents (these
  reach dispatch), half arbitrary mixes of text/binary/invalid-UTF-8/fragmented (with
  interleaved pings)/ping frames and of Bokeh messages with random headers (msgtype,
  msgid, num_buffers), random buffer headers, random contents, server-only msgtypes and
  PUSH-DOCs, sometimes cut short, sometimes ended by a client close frame with any code;
* PATCH-DOC events (every event kind) naming real or unknown model ids and attributes,
  with random plain and Bokeh-encoded values and optional buffers.

Every example gets an answer: either the server replies (OK/ERROR/...: checked with a
SERVER-INFO-REQ barrier when the frames sent form complete messages) or it closes the
connection with a code in 1000-4999 (forced, when the frames may leave a message half
assembled, by two binary frames that no receiver state can accept). A read that times out
is a hang; a close with 1011 means an unhandled exception in the server: both fail.
Connections are reused while they survive; a closed one is replaced with a fresh one on
the same session (same token), the session itself is renewed every ``SESSION_EVERY`` uses.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import websocket
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websocket import ABNF

from tests.support import wire
from tests.support.hardening import (
    HELLO,
    fresh_session_works,
    settings_env,
    slow_size,
    touch,
    tracebacks,
    wait_for_memory,
)
from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, Closed, page_token

APP = "hard_fuzz"
CI_FRAME_EXAMPLES = 1500
CI_PATCH_EXAMPLES = 1500
#: A fresh session (page + token) after this many connections or patches.
SESSION_EVERY = 150
#: Seconds any single read may take before the server counts as hung.
READ_TIMEOUT = 10.0

CLIENT_TYPES = ("PULL-DOC-REQ", "SERVER-INFO-REQ", "PATCH-DOC", "PUSH-DOC")
SERVER_TYPES = ("ACK", "OK", "ERROR", "PULL-DOC-REPLY", "SERVER-INFO-REPLY")
REPLY_TYPES = {"OK", "ERROR", "PULL-DOC-REPLY", "SERVER-INFO-REPLY", "PATCH-DOC"}

STATS: Counter = Counter()
#: The slowest examples (seconds, what), for the report.
SLOWEST: list[tuple[float, str]] = []


def note_time(start: float, what: Any) -> None:
    SLOWEST.append((time.monotonic() - start, short(what, 200)))
    SLOWEST.sort(key=lambda item: -item[0])
    del SLOWEST[5:]


# -- the server and the connection pool ---------------------------------------------------

@pytest.fixture(scope="module")
def server():
    s = launch("gunicorn", apps=[HELLO, APPS / f"{APP}.py"], env=settings_env())
    touch(s)
    yield s
    s.stop()


class Pool:
    """The current session (token + pulled document) and the current connection."""

    def __init__(self, server) -> None:
        self.server = server
        self.ws: BokehWS | None = None
        self.token = ""
        self.uses = 0
        self.doc: dict = {}
        self.models: list[tuple[str, str, list[str]]] = []  # (id, type name, attribute names)
        self.new_session()

    def new_session(self) -> None:
        self.drop()
        self.token = page_token(self.server.url, APP)
        self.uses = 0
        STATS["sessions"] += 1
        ws = self.connection()
        self.doc = ws.pull().content["doc"]
        self.models = [(m["id"], m["name"], sorted(m.get("attributes", {})))
                       for m in wire.walk(self.doc) if m.get("type") == "object" and "id" in m]
        assert self.models

    def connection(self) -> BokehWS:
        if self.ws is None:
            self.uses += 1
            STATS["connections"] += 1
            self.ws = BokehWS(f"{self.server.ws_url}/{APP}/ws", self.token, timeout=READ_TIMEOUT)
            assert self.ws.ack.msgtype == "ACK"
        return self.ws

    def __repr__(self) -> str:
        return f"<connection pool on port {self.server.port}>"

    def drop(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def maybe_renew(self) -> None:
        if self.uses >= SESSION_EVERY:
            self.new_session()


@pytest.fixture(scope="module")
def pool(server):
    p = Pool(server)
    yield p
    p.drop()


# -- what a frame is --------------------------------------------------------------------------

@dataclass(frozen=True)
class BadText:
    """A text frame whose payload is not UTF-8."""
    data: bytes


@dataclass(frozen=True)
class Fragmented:
    """One text message sent as several websocket fragments (continuation frames),
    optionally with a ping between the fragments (control frames may interleave)."""
    text: str
    parts: int
    ping_between: bool = False


@dataclass(frozen=True)
class ClientClose:
    """The client's close frame (always last): any code (None: no payload), any reason."""
    code: int | None
    reason: bytes


@dataclass(frozen=True)
class Ping:
    data: bytes


@dataclass(frozen=True)
class RealId:
    """Resolved at run time to the id of a model of the current session."""
    index: int


@dataclass(frozen=True)
class RealAttr:
    """Resolved at run time to an attribute name of the event's model (or a common one)."""
    index: int


@dataclass
class Json:
    """A text frame holding this value as JSON (resolved first)."""
    value: Any


@dataclass(frozen=True)
class PulledDoc:
    """Resolved at run time to the current session's pulled document (a valid PUSH-DOC)."""


COMMON_ATTRS = ("value", "text", "title", "data", "label", "start", "end", "step", "options",
                "visible", "name", "tags", "width", "height", "active", "disabled", "x", "y",
                "js_property_callbacks", "subscribed_events", "renderers", "children", "nope")


def resolve(value: Any, pool: Pool, model: str | None = None) -> Any:
    if isinstance(value, RealId):
        return pool.models[value.index % len(pool.models)][0]
    if isinstance(value, RealAttr):
        attrs = next((a for i, _, a in pool.models if i == model), [])
        choices = list(attrs) + list(COMMON_ATTRS)
        return choices[value.index % len(choices)]
    if isinstance(value, PulledDoc):
        return pool.doc
    if isinstance(value, dict):
        target = value.get("model", {}).get("id") if isinstance(value.get("model"), dict) else None
        target = resolve(target, pool) if target is not None else model
        return {resolve(k, pool, target) if isinstance(k, (RealId, RealAttr)) else k:
                resolve(v, pool, target) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve(v, pool, model) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


# -- strategies -------------------------------------------------------------------------------

_text = st.text(max_size=12)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), _text,
)
_model_id = st.one_of(st.integers(0, 10**6).map(RealId), _text,
                      st.sampled_from(["p1", "p999999", "", "nope", "C" * 32]))
_buffer_id = st.sampled_from(["0", "1", "2", "b", ""]) | _text
_ref = st.fixed_dictionaries({"id": _model_id})
_bokeh_leaf = st.one_of(
    st.fixed_dictionaries({"type": st.just("number"), "value": st.sampled_from(["nan", "-inf", "+inf", 1, "x", None])}),
    st.fixed_dictionaries({"type": st.just("bytes"),
                           "data": st.one_of(_text, st.fixed_dictionaries({"id": _buffer_id}))}),
    st.fixed_dictionaries({
        "type": st.just("ndarray"),
        "array": st.one_of(st.fixed_dictionaries({"type": st.just("bytes"),
                                                  "data": st.fixed_dictionaries({"id": _buffer_id})}),
                           st.lists(_scalar, max_size=4), _text),
        "shape": st.lists(st.integers(-1, 6), max_size=3),
        "dtype": st.sampled_from(["float64", "int32", "uint8", "bool", "object", "float16", "foo", ""]),
        "order": st.sampled_from(["little", "big", "middle"]),
    }),
    st.fixed_dictionaries({"type": st.just("typed_array"),
                           "array": st.fixed_dictionaries({"type": st.just("bytes"), "data": _text}),
                           "order": st.sampled_from(["little", "big"]),
                           "dtype": st.sampled_from(["float64", "int32", "uint8", "nope"])}),
    st.fixed_dictionaries({"type": st.just("slice"), "start": _scalar, "stop": _scalar, "step": _scalar}),
    st.fixed_dictionaries({"type": st.sampled_from(["value", "field", "expr"]), "value": _scalar, "field": _text}),
    st.fixed_dictionaries({"type": st.just("object"),
                           "name": st.sampled_from(["Div", "Slider", "ColumnDataSource", "Plot", "Range1d",
                                                    "bokeh.models.Div", "NoSuchModel", "", "Document"]),
                           "id": _model_id},
                          optional={"attributes": st.dictionaries(st.sampled_from(COMMON_ATTRS), _scalar, max_size=3)}),
    st.fixed_dictionaries({"type": st.just("date"), "iso": _text}),
    st.fixed_dictionaries({"type": st.sampled_from(["symbol", "nope", "", "map", "set", "ref"])}),
    _ref,
)
_value = st.recursive(
    st.one_of(_scalar, _bokeh_leaf),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_text, inner, max_size=3),
        st.fixed_dictionaries({"type": st.just("map"),
                               "entries": st.lists(st.tuples(inner, inner).map(list), max_size=3)}),
        st.fixed_dictionaries({"type": st.just("set"), "entries": st.lists(inner, max_size=3)}),
    ),
    max_leaves=6,
)
_model_field = st.one_of(_ref, _value)
_attr = st.one_of(st.integers(0, 1000).map(RealAttr), _text)
_columns = st.fixed_dictionaries({"type": st.just("map"), "entries": st.lists(
    st.tuples(st.sampled_from(["x", "y", "label", "nope"]) | _text,
              st.lists(_scalar, max_size=4) | _value).map(list), max_size=3)}) | _value

_event = st.one_of(
    st.fixed_dictionaries({"kind": st.just("ModelChanged"), "model": _model_field, "attr": _attr, "new": _value}),
    st.fixed_dictionaries({"kind": st.just("ColumnDataChanged"), "model": _model_field, "attr": _attr,
                           "data": _columns}, optional={"cols": st.lists(_text, max_size=3) | _value}),
    st.fixed_dictionaries({"kind": st.just("ColumnsStreamed"), "model": _model_field, "attr": _attr,
                           "data": _columns}, optional={"rollover": st.integers(-2, 100) | _scalar}),
    st.fixed_dictionaries({"kind": st.just("ColumnsPatched"), "model": _model_field, "attr": _attr,
                           "patches": _columns}),
    st.fixed_dictionaries({"kind": st.just("TitleChanged"), "title": _value}),
    st.fixed_dictionaries({"kind": st.sampled_from(["RootAdded", "RootRemoved"]), "model": _model_field}),
    st.fixed_dictionaries({"kind": st.just("MessageSent"),
                           "msg_type": st.sampled_from(["bokeh_event", "nope", ""]) | _text,
                           "msg_data": st.one_of(
                               _value,
                               st.fixed_dictionaries({
                                   "type": st.just("event"),
                                   "name": st.sampled_from(["button_click", "document_ready", "tap",
                                                            "connection_lost", "nope", ""]),
                                   "values": st.fixed_dictionaries({
                                       "type": st.just("map"),
                                       "entries": st.lists(st.tuples(st.sampled_from(["model", "x", "y"]) | _text,
                                                                     _model_field).map(list), max_size=3)})}))}),
    st.dictionaries(st.sampled_from(["kind", "model", "attr", "new", "data"]), _value, max_size=4),
)
_buffers = st.lists(st.tuples(_buffer_id, st.binary(max_size=64)), max_size=3)
_patch = st.tuples(st.lists(_event, min_size=1, max_size=3), _buffers)

# -- whole frame sequences

_msgtype = st.one_of(st.sampled_from(CLIENT_TYPES), st.sampled_from(CLIENT_TYPES), st.sampled_from(CLIENT_TYPES),
                     st.sampled_from(SERVER_TYPES + ("FOO", "", "patch-doc")), _value)
_content = st.one_of(
    st.lists(_event, max_size=2).map(lambda events: {"events": events}),
    st.just(PulledDoc()).map(lambda d: {"doc": d}),
    st.fixed_dictionaries({"doc": _value}),
    _value,
)


@st.composite
def _message(draw) -> list:
    """One Bokeh message, well framed unless the draw says otherwise."""
    msgtype = draw(_msgtype)
    buffers = draw(_buffers)
    header: dict[str, Any] = {"msgtype": msgtype}
    if draw(st.integers(0, 9)) > 0:
        header["msgid"] = draw(st.one_of(st.just(f"F{draw(st.integers(0, 10**9)):031X}"), _value))
    if buffers or draw(st.booleans()):
        header["num_buffers"] = len(buffers) if draw(st.integers(0, 4)) > 0 else draw(
            st.one_of(st.integers(-2, 5), _value))
    for extra in draw(st.lists(st.sampled_from(["reqid", "x", "msgid2"]), max_size=2, unique=True)):
        header[extra] = draw(_value)
    metadata = "{}" if draw(st.integers(0, 7)) > 0 else draw(st.sampled_from(["[]", "null", '{"a": 1}', "{nope", ""]))
    frames: list = [Json(header), metadata, Json(draw(_content))]
    for buffer_id, data in buffers:
        buffer_header = {"id": buffer_id} if draw(st.integers(0, 7)) > 0 else draw(
            st.dictionaries(st.sampled_from(["id", "x"]), _value, max_size=2))
        frames += [Json(buffer_header), data]
    return frames


@st.composite
def _valid_message(draw) -> list:
    """A well-framed client message (valid header, metadata and buffer framing) with a
    random content: these reach dispatch and, when answered, keep the connection open."""
    msgtype = draw(st.sampled_from(CLIENT_TYPES))
    buffers = draw(_buffers)
    header: dict[str, Any] = {"msgid": f"V{draw(st.integers(0, 10**9)):031X}", "msgtype": msgtype}
    if buffers or draw(st.booleans()):
        header["num_buffers"] = len(buffers)
    if msgtype == "PATCH-DOC":
        content = draw(st.one_of(st.lists(_event, max_size=3).map(lambda events: {"events": events}), _value))
    elif msgtype == "PUSH-DOC":
        content = draw(st.one_of(st.just({"doc": PulledDoc()}), st.fixed_dictionaries({"doc": _value}), _value))
    else:
        content = draw(st.one_of(st.just({}), _value))
    frames: list = [Json(header), "{}", Json(content)]
    for buffer_id, data in buffers:
        frames += [Json({"id": buffer_id}), data]
    return frames


_junk = st.one_of(
    _text, st.binary(max_size=32), st.binary(max_size=16).map(lambda b: BadText(b"\xff\xfe" + b)),
    _value.map(Json), st.tuples(_text, st.integers(2, 4)).map(lambda t: Fragmented(dumps({"msgtype": t[0]}), t[1])),
    st.binary(max_size=8).map(Ping),
    st.builds(Fragmented, _text.map(lambda t: dumps({"msgtype": "PULL-DOC-REQ", "msgid": "F" + t})),
              st.integers(2, 4), st.just(True)),
)
_client_close = st.builds(
    ClientClose,
    st.one_of(st.none(), st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 3000, 4000, 4999]),
              st.integers(0, 65535).filter(lambda c: c != 1011)),  # a 1011 we sent would be echoed back
    st.one_of(st.binary(max_size=20), st.text(max_size=20).map(str.encode)),
)


@st.composite
def _sequence(draw) -> list:
    if draw(st.booleans()):  # half the sequences: well-framed messages only
        return [f for _ in range(draw(st.integers(1, 3))) for f in draw(_valid_message())]
    out: list = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 7)) > 0:
            out += draw(_message())
        else:
            out.append(draw(_junk))
    if draw(st.integers(0, 7)) == 0 and out:  # sometimes cut a message short
        out = out[: draw(st.integers(1, len(out)))]
    if draw(st.integers(0, 9)) == 0:  # sometimes end with the client's close frame
        out.append(draw(_client_close))
    return out


# -- sending and judging -----------------------------------------------------------------------

def send_frames(ws: BokehWS, frames: list, pool: Pool) -> None:
    for f in frames:
        if isinstance(f, Json):
            f = dumps(resolve(f.value, pool))
        if isinstance(f, str):
            ws.ws.send(f)
        elif isinstance(f, bytes):
            ws.ws.send_binary(f)
        elif isinstance(f, BadText):
            ws.ws.send(f.data, opcode=ABNF.OPCODE_TEXT)
        elif isinstance(f, Fragmented):
            data = f.text.encode()
            size = max(1, math.ceil(len(data) / f.parts))
            chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
            for i, chunk in enumerate(chunks):
                opcode = ABNF.OPCODE_TEXT if i == 0 else ABNF.OPCODE_CONT
                ws.ws.send_frame(ABNF.create_frame(chunk, opcode, fin=int(i == len(chunks) - 1)))
                if f.ping_between and i < len(chunks) - 1:
                    ws.ws.ping(b"between")
        elif isinstance(f, ClientClose):
            payload = b"" if f.code is None else f.code.to_bytes(2, "big") + f.reason
            ws.ws.send(payload, ABNF.OPCODE_CLOSE)
        elif isinstance(f, Ping):
            ws.ws.ping(f.data)
        else:
            raise TypeError(f)


def predicts_complete(frames: list) -> bool:
    """True only when the frames surely form complete client messages that the server
    must answer (so a barrier after them must be answered too); False when in doubt."""
    state, expected, received = "header", 0, 0
    for f in frames:
        if isinstance(f, Ping):
            continue
        if isinstance(f, (BadText, ClientClose)):
            return False
        text = f.text if isinstance(f, Fragmented) else f if isinstance(f, str) else None
        if state == "payload":
            if not isinstance(f, bytes):
                return False
            received += 1
            state = "header" if received == expected else "buffer-header"
            continue
        if isinstance(f, Json):
            parsed = f.value
        elif text is None:
            return False
        else:
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                return False
        if state == "header":
            if not isinstance(parsed, dict) or parsed.get("msgtype") not in CLIENT_TYPES or "msgid" not in parsed:
                return False
            expected = parsed.get("num_buffers", 0)
            if type(expected) is not int or expected < 0:
                return False
            received, state = 0, "metadata"
        elif state == "metadata":
            if parsed is None:
                return False  # Bokeh's Message.complete treats null metadata as missing: more frames due
            state = "content"
        elif state == "content":
            if parsed is None:
                return False  # null content: as above
            state = "header" if expected == 0 else "buffer-header"
        elif state == "buffer-header":
            if not isinstance(parsed, dict) or set(parsed) != {"id"}:
                return False
            state = "payload"
    return state == "header"


def read_until(ws: BokehWS, reqid: str | None) -> tuple[list, int | None]:
    """Messages up to the reply to ``reqid`` (or up to the close when None); (messages, close code).
    Raises AssertionError on a hang or on a broken frame stream."""
    seen = []
    for _ in range(10_000):
        try:
            msg = ws.recv()
        except Closed as closed:
            return seen, closed.code
        except websocket.WebSocketTimeoutException:
            raise AssertionError(f"server hung: no reply/close within {READ_TIMEOUT}s after {seen[-3:]}")
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return seen, -1  # dropped without a close frame
        except websocket.WebSocketProtocolException as exc:
            raise AssertionError(f"invalid frame from the server: {exc}") from None
        assert msg.msgtype in REPLY_TYPES, msg
        seen.append(msg)
        if reqid is not None and msg.reqid == reqid:
            return seen, None
    raise AssertionError("server kept sending")


def short(value: Any, limit: int = 600) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def judge_close(code: int | None, context: Any, empty_ok: bool = False) -> None:
    STATS[f"close {code}"] += 1
    context = short(context)
    if code is None and empty_ok:
        return  # answering a close frame without a code with one without a code (RFC 6455 5.5.1)
    assert code != 1011, f"1011 internal error (unhandled exception) for {context}"
    assert code != -1, f"connection dropped without a close frame for {context}"
    assert code is not None and 1000 <= code <= 4999, f"close code {code} for {context}"


def run_sequence(pool: Pool, frames: list) -> None:
    start = time.monotonic()
    try:
        _run_sequence(pool, frames)
    except BaseException:
        pool.drop()  # never reuse a connection in an unknown state
        raise
    finally:
        note_time(start, frames)


def _run_sequence(pool: Pool, frames: list) -> None:
    pool.maybe_renew()
    ws = pool.connection()
    STATS["frame sequences"] += 1
    STATS["frames"] += len(frames)
    complete = predicts_complete(frames)
    try:
        send_frames(ws, frames, pool)
        if frames and isinstance(frames[-1], ClientClose):
            barrier = None  # nothing may follow a close frame: read up to the server's close
        elif complete:
            barrier = ws.send("SERVER-INFO-REQ")
        else:
            # no receiver state accepts two binary frames in a row outside a buffer payload
            ws.ws.send_binary(b"\x00terminator")
            ws.ws.send_binary(b"\x00terminator")
            barrier = None
    except (OSError, websocket.WebSocketException):
        barrier = None  # the server already closed: read what it sent
    seen, code = read_until(ws, barrier)
    for msg in seen:
        STATS[f"reply {msg.msgtype}"] += 1
        if msg.msgtype == "ERROR":
            assert msg.content.get("traceback") is None, msg  # README: no server traceback
    if barrier is not None and code is None:
        STATS["survived"] += 1
        return  # answered and still open: reuse it
    pool.ws = None
    ws.close()
    client_close = frames[-1] if frames and isinstance(frames[-1], ClientClose) else None
    judge_close(code, frames, empty_ok=client_close is not None and client_close.code is None)


def run_patch(pool: Pool, events: list, buffers: list) -> None:
    start = time.monotonic()
    try:
        _run_patch(pool, events, buffers)
    except BaseException:
        pool.drop()
        raise
    finally:
        note_time(start, events)


def _run_patch(pool: Pool, events: list, buffers: list) -> None:
    pool.maybe_renew()
    ws = pool.connection()
    pool.uses += 1
    events = resolve(events, pool)
    STATS["patches"] += 1
    STATS["events"] += len(events)
    head = {"msgid": ws.new_id(), "msgtype": "PATCH-DOC"}
    if buffers:
        head["num_buffers"] = len(buffers)
    frames: list = [dumps(head), "{}", dumps({"events": events})]
    for buffer_id, data in buffers:
        frames += [dumps({"id": buffer_id}), data]
    try:
        send_frames(ws, frames, pool)
    except (OSError, websocket.WebSocketException):
        pass
    seen, code = read_until(ws, head["msgid"])
    for msg in seen:
        STATS[f"patch reply {msg.msgtype}"] += 1
    if code is None:
        assert seen[-1].msgtype in ("OK", "ERROR"), seen[-1]
        if seen[-1].msgtype == "ERROR":
            assert seen[-1].content.get("traceback") is None, seen[-1]
        return
    pool.ws = None
    ws.close()
    # a well-framed PATCH-DOC is answered, never closed on (README: ERROR, connection stays open)
    judge_close(code, events)
    raise AssertionError(f"well-formed PATCH-DOC closed the connection with {code}: {short(events)}")


_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
           HealthCheck.filter_too_much]


class Big(str):
    """A long frame with a short repr (failure reports stay readable)."""

    def __repr__(self) -> str:
        return f"<{len(self)} chars: {str(self[:30])!r}...>"


_DEEP = Big("[" * 100_000 + "]" * 100_000)
_HEADER = dumps({"msgid": "F" * 32, "msgtype": "PATCH-DOC"})


# -- the tests ----------------------------------------------------------------------------------

@settings(max_examples=CI_FRAME_EXAMPLES, deadline=None, suppress_health_check=_HEALTH)
@given(frames=_sequence())
@example(frames=[_DEEP, "{}", "{}"])
@example(frames=[_HEADER, "{}", Big('{"events": ' + _DEEP + '}')])
@example(frames=[_HEADER, _DEEP, "{}"])
@example(frames=[dumps({"msgtype": "PATCH-DOC", "msgid": "x", "num_buffers": 10**12}), "{}", '{"events": []}'])
@example(frames=[dumps({"msgtype": "PUSH-DOC", "msgid": "x"}), "{}", Json({"doc": PulledDoc()})])
def test_frame_sequences_get_a_reply_or_a_clean_close(pool, frames):
    run_sequence(pool, frames)


@settings(max_examples=CI_PATCH_EXAMPLES, deadline=None, suppress_health_check=_HEALTH)
@given(patch=_patch)
def test_patch_events_get_ok_or_error(pool, patch):
    run_patch(pool, *patch)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_frames_and_patches_slow(server, pool):
    """The same generators at 10x the CI size (x HARDENING_SCALE), then the health checks."""
    @settings(max_examples=slow_size(15_000), deadline=None, suppress_health_check=_HEALTH)
    @given(frames=_sequence())
    def frames(frames):
        run_sequence(pool, frames)

    @settings(max_examples=slow_size(15_000), deadline=None, suppress_health_check=_HEALTH)
    @given(patch=_patch)
    def patches(patch):
        run_patch(pool, *patch)

    frames()
    patches()
    check_health(server, pool)


def test_server_healthy_after_fuzzing(server, pool):
    """Runs after the fuzzing: a fresh session works, no traceback in the log, no leak."""
    check_health(server, pool)


def check_health(server, pool) -> None:
    pool.drop()
    took = fresh_session_works(server, APP)
    fresh_session_works(server, "hello")
    print(f"\nws fuzz: {dict(sorted(STATS.items()))}; fresh session after fuzzing took {took:.3f}s")
    print("ws fuzz: slowest examples: " + "; ".join(f"{t:.3f}s {w}" for t, w in SLOWEST))
    log = server.log_text()
    assert "websocket handler failed" not in log, tracebacks(log)[:3]
    # the app's own callback raises on purpose: that traceback is the app author's, logged
    # for them; any other would be the server's
    unexpected = [t for t in tracebacks(log) if "app callback raised on purpose" not in t]
    assert not unexpected, unexpected[:3]
    # every fuzz connection is gone once its socket closed (the sessions expire after 0.5 s)
    final = wait_for_memory(server, lambda m: m.connections == 0 and m.sessions == 0, timeout=30,
                            what="0 connections and 0 sessions after fuzzing")
    print(f"ws fuzz: server after fuzzing: {final}")


_NO_ID = object()


@pytest.mark.parametrize("msgid", [_NO_ID, None, 7, ["x"]], ids=["missing", "null", "int", "list"])
@pytest.mark.parametrize("msgtype", CLIENT_TYPES)
def test_message_without_string_msgid_is_not_an_internal_error(pool, msgtype, msgid):
    """Found while writing this fuzzer: a client message whose header has no ``msgid``
    made every reply path raise ``KeyError`` twice (the handler, then building the ERROR
    reply), which escaped as a 1011 close with a logged traceback. The server cannot
    address a reply to such a message: it must answer or close with a code in 1000-4999,
    never 1011."""
    header = {"msgtype": msgtype} if msgid is _NO_ID else {"msgtype": msgtype, "msgid": msgid}
    content = {"events": []} if msgtype == "PATCH-DOC" else {"doc": PulledDoc()} if msgtype == "PUSH-DOC" else {}
    run_sequence(pool, [dumps(header), "{}", Json(content)])
