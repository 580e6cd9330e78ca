"""Server frames on the wire (RFC 6455 5.2) and the order of writes, read from a raw socket.

The server builds frame headers itself and writes large buffers without copying them, and
writes a PATCH-DOC caused by a client's patch together with the OK. These tests parse its
bytes directly, so a wrong length encoding, a masked or fragmented frame, or a payload cut
short shows up as such rather than as a client library's error.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import struct
from urllib.parse import urlsplit

import numpy as np
import pytest

from bokeh_flask.app.apps.bokeh_compat import DOCUMENT_BUFFERS
from tests.support.bokeh_version import BOKEH4, text_frames
from tests.support.wire import (
    ROUNDTRIP,
    TIMEOUT,
    decode_ndarray,
    map_entries,
    model_by_name,
    model_changed,
    model_changes,
    page_token,
)

OPCODE_TEXT, OPCODE_BINARY, OPCODE_CLOSE = 0x1, 0x2, 0x8


class RawWS:
    """A websocket client on a bare socket that keeps every server frame's header bytes."""

    def __init__(self, ws_url: str, token: str) -> None:
        url = urlsplit(ws_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: bokeh, {token}\r\nOrigin: http://{url.netloc}\r\n\r\n"
        ).encode())
        self.data = b""
        while b"\r\n\r\n" not in self.data:
            self._fill()
        head, self.data = self.data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        assert chunk, "server closed the connection"
        self.data += chunk

    def _take(self, size: int) -> bytes:
        while len(self.data) < size:
            self._fill()
        taken, self.data = self.data[:size], self.data[size:]
        return taken

    def send_text(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes((0x81, 0x80 | len(payload))) + mask + masked)

    def recv_frame(self) -> tuple[bytes, int, bytes]:
        """(header bytes, opcode, payload) of the next frame, checked against RFC 6455."""
        head = self._take(2)
        assert head[0] & 0x80, "server frames are never fragmented"
        assert head[0] & 0x70 == 0, "reserved bits set"
        assert head[1] & 0x80 == 0, "server frames are not masked"
        length = head[1] & 0x7F
        if length == 126:
            head += self._take(2)
            length = struct.unpack("!H", head[2:])[0]
            assert length >= 126, "length not in its shortest form"
        elif length == 127:
            head += self._take(8)
            length = struct.unpack("!Q", head[2:])[0]
            assert length >= 65536, "length not in its shortest form"
        return head, head[0] & 0x0F, self._take(length)

    def send_message(self, msgtype: str) -> str:
        msgid = f"RAW{msgtype}"
        for text in text_frames(msgtype, msgid):
            self.send_text(text)
        return msgid

    def recv_message(self) -> tuple[dict, dict[str, tuple[bytes, bytes]]]:
        """A Bokeh message: (header, {buffer id: (frame header, payload)}); the content is
        skipped. Bokeh 3: header, metadata and content text frames, then an ``{"id"}`` text
        frame before each binary buffer; Bokeh 4: one text envelope naming the buffers."""
        if BOKEH4:
            _, op, text = self.recv_frame()
            assert op == OPCODE_TEXT
            envelope = json.loads(text)
            header, buffer_ids = envelope["header"], envelope["buffers"]
        else:
            frames = [self.recv_frame() for _ in range(3)]
            assert [op for _, op, _ in frames] == [OPCODE_TEXT] * 3
            header = json.loads(frames[0][2])
            buffer_ids = [None] * header.get("num_buffers", 0)
        buffers = {}
        for buffer_id in buffer_ids:
            if buffer_id is None:
                _, op, ref = self.recv_frame()
                assert op == OPCODE_TEXT
                buffer_id = json.loads(ref)["id"]
            head, op, payload = self.recv_frame()
            assert op == OPCODE_BINARY
            buffers[buffer_id] = (head, payload)
        return header, buffers


def _expected_header(opcode: int, size: int) -> bytes:
    if size < 126:
        return bytes((0x80 | opcode, size))
    if size < 65536:
        return bytes((0x80 | opcode, 126)) + struct.pack("!H", size)
    return bytes((0x80 | opcode, 127)) + struct.pack("!Q", size)


def _uint8_patch(source_id: str, values: np.ndarray) -> dict:
    column = {"type": "ndarray", "array": {"type": "bytes", "data": {"id": "0"}},
              "shape": [len(values)], "dtype": "uint8", "order": "little"}
    return model_changed(source_id, "data", {"type": "map", "entries": [["x", column]]})


@pytest.mark.parametrize("size", [1, 125, 126, 16383, 16384, 65535, 65536, 1_000_003])
def test_binary_buffer_arrives_whole_with_shortest_header(server, connect, size):
    """A buffer of ``size`` bytes leaves in one binary frame whose header uses the 2-,
    4- or 10-byte form exactly as RFC 6455 5.2 requires, and its bytes are intact; the
    frames around it are in step (the ACK before, a reply after). The buffer is a client's
    patch as the server forwards it to another connection of the session (binary on every
    Bokeh; a pulled document's arrays are binary only from Bokeh 3.9)."""
    token = page_token(server.url, "ws_cds_app")
    writer = connect(server, "ws_cds_app", token=token)
    source_id = model_by_name(writer.pull().content["doc"], "src")["id"]
    values = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)

    raw = RawWS(f"{server.ws_url}/ws_cds_app/ws", token)
    try:
        assert raw.recv_message()[0]["msgtype"] == "ACK"
        reply, _ = writer.request("PATCH-DOC", {"events": [_uint8_patch(source_id, values)]},
                                  buffers=[("0", values.tobytes())])
        assert reply.msgtype == "OK", reply
        header, buffers = raw.recv_message()
        assert header["msgtype"] == "PATCH-DOC"
        [(head, payload)] = buffers.values()
        assert head == _expected_header(OPCODE_BINARY, size)
        assert payload == values.tobytes()
        info_id = raw.send_message(ROUNDTRIP[0])
        header, _ = raw.recv_message()
        assert header["msgtype"] == ROUNDTRIP[1] and header["reqid"] == info_id
    finally:
        raw.close()


def test_big_pull_raw_frames(server):
    """The 8 MB column of a 1M-float64 document: one binary frame, 10-byte header (Bokeh
    < 3.9: the base64 of it in the content frame, a text frame with the 10-byte header)."""
    raw = RawWS(f"{server.ws_url}/ws_bigdata_app/ws", page_token(server.url, "ws_bigdata_app"))
    try:
        raw.recv_message()
        raw.send_message("PULL-DOC-REQ")
        if not DOCUMENT_BUFFERS:
            frames = [raw.recv_frame() for _ in range(3)]
            assert json.loads(frames[0][2])["msgtype"] == "PULL-DOC-REPLY"
            head, opcode, content = frames[2]
            assert opcode == OPCODE_TEXT and head == _expected_header(OPCODE_TEXT, len(content))
            column = map_entries(model_by_name(json.loads(content)["doc"], "big")["attributes"]["data"])["x"]
            assert np.array_equal(decode_ndarray(column, {}), np.arange(1e6))
            return
        header, buffers = raw.recv_message()
        assert header["msgtype"] == "PULL-DOC-REPLY"
        [(head, payload)] = buffers.values()
        assert head == _expected_header(OPCODE_BINARY, 8_000_000)
        assert np.array_equal(np.frombuffer(payload, dtype=np.float64), np.arange(1e6))
    finally:
        raw.close()


def test_large_text_frame_from_a_callback(server, connect):
    """The app's callback turns a 70,000-character value into a PATCH-DOC over 65,535
    bytes: a text frame with the 10-byte header, written with the OK."""
    raw_token = page_token(server.url)
    ws = connect(server, token=raw_token)
    doc = ws.pull().content["doc"]
    ti, div = model_by_name(doc, "ti")["id"], model_by_name(doc, "status")["id"]
    value = "v" * 70_000
    reply, before = ws.request("PATCH-DOC", {"events": [model_changed(ti, "value", value)]})
    assert reply.msgtype == "OK"
    assert [e["new"] for e in model_changes(before, "text", div)] == ["got " + value]


def test_patches_sent_back_to_back_are_answered_in_order(server, connect):
    """Twenty patches without waiting: for each, the PATCH-DOC its callback caused, then
    its OK, in order; a second connection on the session sees every change in order."""
    token = page_token(server.url)
    sender = connect(server, token=token)
    watcher = connect(server, token=token)
    doc = sender.pull().content["doc"]
    ti, div = model_by_name(doc, "ti")["id"], model_by_name(doc, "status")["id"]

    ids = [sender.patch(model_changed(ti, "value", f"v{i}")) for i in range(20)]
    seen = sender.recv_until(lambda m: m.reqid == ids[-1])
    expected = []
    for i, msgid in enumerate(ids):
        expected += [("PATCH-DOC", f"got v{i}"), ("OK", msgid)]
    got = [(m.msgtype, m.reqid if m.msgtype == "OK" else model_changes([m], "text", div)[0]["new"])
           for m in seen]
    assert got == expected

    changes = [(e["model"]["id"], e["new"]) for e in model_changes(watcher.barrier())]
    assert sorted(changes) == sorted(c for i in range(20) for c in ((ti, f"v{i}"), (div, f"got v{i}")))
    rounds = [int(new.rsplit("v", 1)[1]) for _, new in changes]
    assert rounds == sorted(rounds), "a later patch's change overtook an earlier one's"


def test_pull_while_another_connection_patches(server, connect):
    """Writes by other greenlets (the fan-out of another connection's patch) and a
    connection's own reply never interleave inside a message."""
    token = page_token(server.url, "ws_cds_app")
    patcher = connect(server, "ws_cds_app", token=token)
    puller = connect(server, "ws_cds_app", token=token)
    source_id = model_by_name(patcher.pull().content["doc"], "src")["id"]
    values = (np.arange(200_000) % 256).astype(np.uint8)
    pulls = [puller.send("PULL-DOC-REQ") for _ in range(5)]
    for _ in range(5):
        patcher.send("PATCH-DOC", {"events": [_uint8_patch(source_id, values)]},
                     buffers=[("0", values.tobytes())])
    replies = puller.recv_until(lambda m: m.reqid == pulls[-1], limit=50)
    assert [m.reqid for m in replies if m.msgtype == "PULL-DOC-REPLY"] == pulls
    for m in replies:
        if m.msgtype == "PATCH-DOC":
            [event] = model_changes([m], "data", source_id)
            column = map_entries(event["new"])["x"]
            assert m.buffers[column["array"]["data"]["id"]] == values.tobytes()
    patcher.barrier()
