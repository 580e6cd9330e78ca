"""permessage-deflate (``--websocket-compression-level`` / ``--websocket-compression-mem-level``).

Off by default, as ``bokeh serve``: a client's offer gets no extension in the 101 answer.
With a flag, the offer is accepted and messages travel compressed both ways. The servers
are started as users start them (``bokeh-flask serve``: gunicorn's gevent worker; and
``flask run`` with the setting in ``BOKEH_FLASK_SETTINGS``); the client is wsproto's, so
every frame's RSV1 bit and every byte on the wire can be counted.
"""
from __future__ import annotations

import base64
import itertools
import json
import socket
from typing import Any, Iterator

import numpy as np
import pytest
from bokeh.client import pull_session
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Message, Request, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode, RsvBits

from tests.support.bokeh_version import BOKEH4, text_frames
from tests.support.servers import APPS, Server, launch
from tests.support.wire import TIMEOUT, button_click, model_by_name, model_changed, page_token, walk

APP_FILES = [APPS / "hello.py", APPS / "ws_bigdata_app.py"]
BIG = np.arange(1e6)  # ws_bigdata_app's column: 8,000,000 bytes


class CountingDeflate(PerMessageDeflate):
    """The client's extension, noting the RSV1 bit of every data frame received."""

    def __init__(self) -> None:
        super().__init__()
        self.rsv1: list[bool] = []

    def frame_inbound_header(self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits,
                             payload_length: int) -> Any:
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            self.rsv1.append(rsv.rsv1)
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)


class DeflateClient:
    """A raw Bokeh websocket client on wsproto, offering permessage-deflate."""

    _ids = itertools.count()

    def __init__(self, server: Server, app: str = "hello", offer: bool = True) -> None:
        token = page_token(server.url, app)
        self.deflate = CountingDeflate()
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.wire_bytes = 0
        #: the raw answer to the handshake, up to its blank line
        self.response_head = b""
        self.sock.sendall(self.ws.send(Request(
            host=f"127.0.0.1:{server.port}", target=f"/{app}/ws", subprotocols=["bokeh", token],
            extensions=[self.deflate] if offer else [],
            extra_headers=[("Origin", f"http://127.0.0.1:{server.port}")])))
        self._events = self._read()
        event = next(self._events)
        assert isinstance(event, AcceptConnection), event
        self.extensions = event.extensions
        self.ack = self.recv()

    @property
    def extensions_header(self) -> str | None:
        """``Sec-WebSocket-Extensions`` of the 101 answer, as sent."""
        for line in self.response_head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                return value.strip()
        return None

    def _read(self) -> Iterator[Any]:
        while True:
            data = self.sock.recv(65536)
            assert data, "server closed the socket"
            self.wire_bytes += len(data)
            if not self.response_head:
                self.response_head = data.partition(b"\r\n\r\n")[0]
            self.ws.receive_data(data)
            yield from self.ws.events()

    def close(self) -> None:
        self.sock.close()

    def recv_message(self) -> str | bytes:
        parts: list[Any] = []
        for event in self._events:
            if isinstance(event, CloseConnection):
                raise ConnectionError(f"closed: {event.code} {event.reason}")
            if isinstance(event, Message):
                parts.append(event.data)
                if event.message_finished:
                    return ("" if isinstance(event, TextMessage) else b"").join(parts)
        raise AssertionError("unreachable")

    def recv(self) -> tuple[dict, Any, dict[str, bytes]]:
        """Bokeh 3's header, metadata, content and ``{"id"}``-buffer pairs, or Bokeh 4's
        envelope and buffers."""
        if BOKEH4:
            envelope = json.loads(self.recv_message())
            return envelope["header"], envelope["content"], {i: self.recv_message() for i in envelope["buffers"]}
        header = json.loads(self.recv_message())
        self.recv_message()  # metadata
        content = json.loads(self.recv_message())
        buffers = {}
        for _ in range(header.get("num_buffers", 0)):
            ref = json.loads(self.recv_message())
            buffers[ref["id"]] = self.recv_message()
        return header, content, buffers

    def send(self, msgtype: str, content: Any = None) -> str:
        msgid = f"C{next(self._ids):031X}"
        for part in text_frames(msgtype, msgid, content):
            self.sock.sendall(self.ws.send(TextMessage(data=part)))
        return msgid

    def request(self, msgtype: str, content: Any = None) -> list[tuple[dict, Any, dict[str, bytes]]]:
        """Send, then read up to the reply; returns the messages read, the reply last."""
        msgid = self.send(msgtype, content)
        seen = [self.recv()]
        while seen[-1][0].get("reqid") != msgid:
            seen.append(self.recv())
        return seen


def texts(messages: list[tuple[dict, Any, dict[str, bytes]]]) -> list[str]:
    """The new ``text`` values the PATCH-DOCs among ``messages`` carry."""
    return [e["new"] for _, content, _ in messages for e in content.get("events", [])
            if e.get("attr") == "text"]


def serve(*args: str, kind: str = "cli", env: dict | None = None) -> Iterator[Server]:
    if kind == "cli":
        args = ("--allow-websocket-origin", "127.0.0.1:*", *args)
    server = launch(kind, apps=APP_FILES, args=list(args), env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def plain_server() -> Iterator[Server]:
    yield from serve()


@pytest.fixture(scope="module", params=["cli", "flask"])
def deflate_server(request) -> Iterator[Server]:
    """Compression on: ``bokeh-flask serve`` (gunicorn's gevent worker, a handler greenlet
    on a duplicated socket) and ``flask run`` (the handler in the request)."""
    if request.param == "cli":
        yield from serve("--websocket-compression-level", "6")
    else:
        settings = json.dumps({"websocket_compression_level": 6})
        yield from serve(kind="flask", env={"BOKEH_FLASK_SETTINGS": settings})


def test_off_by_default_the_offer_is_declined(plain_server):
    client = DeflateClient(plain_server)
    try:
        assert client.response_head.startswith(b"HTTP/1.1 101")
        assert client.extensions_header is None and client.extensions == []
        assert client.ack[0]["msgtype"] == "ACK"
    finally:
        client.close()


def test_on_the_offer_is_accepted_and_messages_travel_compressed(deflate_server):
    client = DeflateClient(deflate_server)
    try:
        assert client.extensions_header.startswith("permessage-deflate")
        assert client.extensions == [client.deflate]
        # the client's compressed PULL-DOC-REQ and PATCH-DOC are inflated by the server
        doc = client.request("PULL-DOC-REQ")[-1][1]["doc"]
        ti, button = model_by_name(doc, "ti"), model_by_name(doc, "btn")
        changed = client.request("PATCH-DOC", {"events": [model_changed(ti["id"], "value", "zz")]})
        assert changed[-1][0]["msgtype"] == "OK" and texts(changed) == ["got zz"]
        clicked = client.request("PATCH-DOC", {"events": [button_click(button["id"])]})
        assert clicked[-1][0]["msgtype"] == "OK" and texts(clicked) == ["clicked"]
        assert client.deflate.rsv1 and all(client.deflate.rsv1)  # every data frame, ACK included
    finally:
        client.close()


def pull_big(server: Server, offer: bool) -> tuple[int, np.ndarray]:
    client = DeflateClient(server, "ws_bigdata_app", offer=offer)
    try:
        before = client.wire_bytes
        _, content, buffers = client.request("PULL-DOC-REQ")[-1]
        if buffers:
            (data,) = buffers.values()
        else:  # Bokeh < 3.8 puts a pulled document's arrays inline, base64 in the JSON
            data = base64.b64decode(next(
                node["array"]["data"] for node in walk(content)
                if node.get("type") == "ndarray" and isinstance(node.get("array"), dict)))
        return client.wire_bytes - before, np.frombuffer(data, dtype=np.float64)
    finally:
        client.close()


def test_a_large_buffer_takes_fewer_bytes_and_arrives_intact(plain_server, deflate_server):
    plain, plain_array = pull_big(plain_server, offer=True)
    deflated, array = pull_big(deflate_server, offer=True)
    np.testing.assert_array_equal(array, BIG)
    np.testing.assert_array_equal(plain_array, BIG)
    assert plain > BIG.nbytes
    assert deflated < plain / 2, (deflated, plain)
    # a client that offers nothing gets plain frames from the same server
    unoffered, array = pull_big(deflate_server, offer=False)
    np.testing.assert_array_equal(array, BIG)
    assert unoffered > BIG.nbytes


def test_a_message_that_inflates_past_the_limit_is_refused_with_1009(deflate_server):
    client = DeflateClient(deflate_server)
    try:
        bomb = b"\0" * (21 * 1024 * 1024)  # past the default 20 MiB, about 20 KiB deflated
        client.sock.sendall(client.ws.send(BytesMessage(data=bomb)))
        with pytest.raises(ConnectionError, match="1009"):
            client.recv_message()
    finally:
        client.close()


def test_inflation_stops_at_the_message_limit():
    """A piece of a frame that inflates past the limit is refused before it is all
    inflated (a 64 KiB read would otherwise become up to 64 MiB at once)."""
    from bokeh_flask.blueprints.websocket.ws_compression import TunedDeflate

    offer = PerMessageDeflate()
    negotiated = PerMessageDeflate()
    negotiated.accept("permessage-deflate")
    offer.finalize("permessage-deflate")
    server = Connection(ConnectionType.SERVER, [TunedDeflate(negotiated, 6, 8, max_message_size=1000)])
    sender = Connection(ConnectionType.CLIENT, [offer])
    server.receive_data(sender.send(BytesMessage(data=b"\0" * 900)))
    assert [type(e) for e in server.events()] == [BytesMessage]
    server.receive_data(sender.send(BytesMessage(data=b"\0" * 5000)))
    (event,) = server.events()
    assert isinstance(event, CloseConnection) and event.code == 1009


def test_bokeh_client_pull_session_still_works(deflate_server):
    with pull_session(url=f"{deflate_server.url}/hello") as session:
        assert session.document.get_model_by_name("ti").value == "a"


def test_mem_level_alone_turns_compression_on():
    for server in serve("--websocket-compression-mem-level", "1"):
        client = DeflateClient(server)
        try:
            assert client.extensions_header.startswith("permessage-deflate")
            assert all(client.deflate.rsv1)
        finally:
            client.close()
