"""A small raw Bokeh-protocol client for the websocket tests (contract 5.1).

Built on websocket-client so every frame is visible: JSON parts must arrive as text
frames, buffer payloads as binary frames, close codes are reported as sent. It speaks the
installed Bokeh's format: 3.x's header, metadata and content frames plus an ``{"id"}`` frame
before each buffer, or Bokeh 4's one ``{"header", "content", "buffers"}`` envelope followed
by the buffers; :meth:`BokehWS.barrier` is ``SERVER-INFO-REQ`` (3.x) or ``SYNC`` (4).
"""
from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import requests
import websocket
from websocket import ABNF

from tests.support.bokeh_version import BOKEH4

TIMEOUT = 10.0
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)

_TOKEN_RE = re.compile(r'\\?"token\\?"\s*:\s*\\?"([A-Za-z0-9_\-.]+)\\?"')


def page_token(base_url: str, app: str = "hello", **params: str) -> str:
    """GET the doc page like a browser and read the session token from its render items."""
    response = requests.get(f"{base_url}/{app}/", params=params, timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:500]
    match = _TOKEN_RE.search(response.text)
    assert match, f"no token in the {app} page"
    return match.group(1)


class Closed(Exception):
    """The server closed the websocket; ``code`` is None when no status code was sent."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"websocket closed: {code} {reason!r}")
        self.code = code
        self.reason = reason


@dataclass
class Msg:
    header: dict
    metadata: Any
    content: Any
    buffers: dict[str, bytes] = field(default_factory=dict)

    @property
    def msgtype(self) -> str:
        return self.header["msgtype"]

    @property
    def reqid(self) -> str | None:
        return self.header.get("reqid")

    @property
    def events(self) -> list[dict]:
        return self.content.get("events", []) if self.msgtype == "PATCH-DOC" else []

    def __repr__(self) -> str:  # keep assertion output short
        text = json.dumps(self.content)
        return f"Msg({self.header}, {text[:300]}{'...' if len(text) > 300 else ''})"


class BokehWS:
    """One raw Bokeh websocket connection."""

    _ids = itertools.count()

    def __init__(self, url: str, token: str, *, timeout: float = TIMEOUT, expect_ack: bool = True,
                 sockopt: tuple = (), **options: Any) -> None:
        self.token = token
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.ws = websocket.create_connection(
            url, subprotocols=["bokeh", token], timeout=timeout, sockopt=NODELAY + tuple(sockopt),
            **options)
        self.ack: Msg | None = self.recv() if expect_ack else None

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            self.ws.shutdown()

    def __enter__(self) -> "BokehWS":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------------

    def new_id(self) -> str:
        return f"C{next(self._ids):031X}"  # BokehJS: 32 upper-case hex characters

    def send_frames(self, frames: Iterable[str | bytes]) -> None:
        for frame in frames:
            if isinstance(frame, bytes):
                self.ws.send_binary(frame)
            else:
                self.ws.send(frame)

    def send_in_one_write(self, frames: Iterable[str | bytes]) -> None:
        """Send ``frames`` in one socket write, so the server reads them in one go (as a
        browser's messages sent in one task often arrive)."""
        self.ws.sock.sendall(b"".join(
            ABNF.create_frame(f, ABNF.OPCODE_BINARY if isinstance(f, bytes) else ABNF.OPCODE_TEXT).format()
            for f in frames))

    def message_frames(self, msgtype: str, content: Any = None, buffers: Iterable[tuple[str, bytes]] = (),
                       **header: Any) -> tuple[str, list[str | bytes]]:
        """One Bokeh message's msgid and frames."""
        buffers = list(buffers)
        head = {"msgid": self.new_id(), "msgtype": msgtype, **header}
        content = {} if content is None else content
        frames: list[str | bytes]
        if BOKEH4:
            envelope = {"header": head, "content": content, "buffers": [buffer_id for buffer_id, _ in buffers]}
            frames = [json.dumps(envelope), *(data for _, data in buffers)]
        else:
            if buffers:
                head["num_buffers"] = len(buffers)
            frames = [json.dumps(head), "{}", json.dumps(content)]
            for buffer_id, data in buffers:
                frames += [json.dumps({"id": buffer_id}), data]
        return head["msgid"], frames

    def send(self, msgtype: str, content: Any = None, buffers: Iterable[tuple[str, bytes]] = (),
             **header: Any) -> str:
        """Send one Bokeh message; returns its msgid."""
        msgid, frames = self.message_frames(msgtype, content, buffers, **header)
        self.send_frames(frames)
        return msgid

    def patch(self, *events: dict, buffers: Iterable[tuple[str, bytes]] = ()) -> str:
        return self.send("PATCH-DOC", {"events": list(events)}, buffers)

    # -- receiving ------------------------------------------------------------------------

    def recv_frame(self) -> tuple[int, bytes]:
        """Next data frame; Closed on a close frame. Pings (answered by websocket-client)
        and pongs are recorded in ``self.pings`` / ``self.pongs``."""
        while True:
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
            if opcode == ABNF.OPCODE_CLOSE:
                raise Closed(*parse_close(frame.data))
            if opcode == ABNF.OPCODE_PING:
                self.pings.append(frame.data)
            elif opcode == ABNF.OPCODE_PONG:
                self.pongs.append(frame.data)
            else:
                return opcode, frame.data

    def recv_json(self, part: str) -> Any:
        opcode, data = self.recv_frame()
        assert opcode == ABNF.OPCODE_TEXT, f"{part} arrived as opcode {opcode}, expected a text frame"
        return json.loads(data)

    def recv(self) -> Msg:
        if BOKEH4:
            envelope = self.recv_json("envelope")
            assert set(envelope) == {"header", "content", "buffers"}, envelope
            header, metadata, content = envelope["header"], None, envelope["content"]
            buffer_ids = envelope["buffers"]
        else:
            header = self.recv_json("header")
            metadata = self.recv_json("metadata")
            content = self.recv_json("content")
            buffer_ids = [None] * header.get("num_buffers", 0)
        buffers: dict[str, bytes] = {}
        for buffer_id in buffer_ids:
            if buffer_id is None:
                ref = self.recv_json("buffer header")
                assert list(ref) == ["id"], ref
                buffer_id = ref["id"]
            opcode, data = self.recv_frame()
            assert opcode == ABNF.OPCODE_BINARY, f"buffer payload arrived as opcode {opcode}"
            buffers[buffer_id] = data
        return Msg(header, metadata, content, buffers)

    def recv_until(self, predicate: Callable[[Msg], bool], limit: int = 200) -> list[Msg]:
        """Messages up to and including the first one matching ``predicate``."""
        seen = []
        for _ in range(limit):
            msg = self.recv()
            seen.append(msg)
            if predicate(msg):
                return seen
        raise AssertionError(f"no matching message in {limit}: {seen[-5:]}")

    def request(self, msgtype: str, content: Any = None, buffers: Iterable[tuple[str, bytes]] = ()
                ) -> tuple[Msg, list[Msg]]:
        """Send and wait for the reply; returns (reply, messages that came before it)."""
        msgid = self.send(msgtype, content, buffers)
        seen = self.recv_until(lambda m: m.reqid == msgid)
        return seen[-1], seen[:-1]

    def pull(self) -> Msg:
        reply, _ = self.request("PULL-DOC-REQ")
        assert reply.msgtype == "PULL-DOC-REPLY", reply
        return reply

    def barrier(self) -> list[Msg]:
        """Round-trip SERVER-INFO-REQ (Bokeh 4: SYNC); returns the messages that arrived
        before its reply."""
        reply, before = self.request(*ROUNDTRIP[:1])
        assert reply.msgtype == ROUNDTRIP[1], reply
        return before

    def wait_closed(self) -> tuple[int | None, str]:
        """Read until the server's close frame; (code, reason). Fails on a timeout."""
        for _ in range(1000):
            try:
                self.recv_frame()
            except Closed as closed:
                return closed.code, closed.reason
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                return None, "connection dropped without a close frame"
        raise AssertionError("server kept sending instead of closing")


#: The client's round trip and its reply.
ROUNDTRIP = ("SYNC", "OK") if BOKEH4 else ("SERVER-INFO-REQ", "SERVER-INFO-REPLY")


def parse_close(data: bytes) -> tuple[int | None, str]:
    if len(data) >= 2:
        return struct.unpack("!H", data[:2])[0], data[2:].decode("utf-8", "replace")
    return None, ""


# -- document JSON helpers ------------------------------------------------------------------

def walk(value: Any) -> Iterator[dict]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def model_by_name(doc_json: dict, name: str) -> dict:
    found = [m for m in walk(doc_json) if m.get("type") == "object"
             and m.get("attributes", {}).get("name") == name]
    assert len(found) == 1, f"{len(found)} models named {name!r}"
    return found[0]


def model_changes(msgs: Iterable[Msg], attr: str | None = None, model_id: str | None = None) -> list[dict]:
    """ModelChanged events in PATCH-DOC messages, optionally filtered."""
    return [e for m in msgs for e in m.events if e.get("kind") == "ModelChanged"
            and (attr is None or e["attr"] == attr)
            and (model_id is None or e["model"]["id"] == model_id)]


def model_changed(model_id: str, attr: str, new: Any) -> dict:
    return {"kind": "ModelChanged", "model": {"id": model_id}, "attr": attr, "new": new}


def button_click(button_id: str) -> dict:
    """What BokehJS sends for a Button click (bokeh.events.ButtonClick, serialized)."""
    return {"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": {
        "type": "event", "name": "button_click",
        "values": {"type": "map", "entries": [["model", {"id": button_id}]]}}}


def ndarray_ref(buffer_id: str, array: np.ndarray) -> dict:
    return {"type": "ndarray", "array": {"type": "bytes", "data": {"id": buffer_id}},
            "shape": list(array.shape), "dtype": array.dtype.name, "order": "little"}


def decode_ndarray(value: dict, buffers: dict[str, bytes]) -> np.ndarray:
    assert value["type"] == "ndarray", value
    data = value["array"]
    if isinstance(data, dict) and data.get("type") == "bytes":
        data = data["data"]
    raw = buffers[data["id"]] if isinstance(data, dict) else base64.b64decode(data)
    return np.frombuffer(raw, dtype=value["dtype"]).reshape(value["shape"])


def map_entries(value: dict) -> dict:
    assert value.get("type") == "map", value
    return dict((k, v) for k, v in value["entries"])
