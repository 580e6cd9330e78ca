"""A small, fast Bokeh-protocol client for the benchmark (raw sockets, no event loop).

It behaves as BokehJS in a browser does: GET the app page, read the session token from the
page's render items, open ``/<app>/ws`` with the subprotocols ``bokeh, <token>`` (and an
``Origin``), wait for ACK, send PULL-DOC-REQ, then PATCH-DOCs. Every socket has TCP_NODELAY
set, as browsers do. A Bokeh message's frames (header, metadata, content) are written with one
``sendall``, as a browser's network thread coalesces the three ``ws.send`` calls it gets
together.

Everything blocks with a timeout; nothing here loops without a bound. Framing follows
``tests/support/wire.py`` (text frames for JSON parts, binary frames for buffers).
"""
from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import re
import socket
import struct
import time
from typing import Any

TIMEOUT = 30.0

TOKEN_RE = re.compile(r'"token"\s*:\s*"([A-Za-z0-9_\-.]+)"')
ROOT_ID_RE = re.compile(r'data-root-id="([^"]+)"')
SCRIPT_RE = re.compile(r'<script[^>]+src="([^"]*bokeh\.min\.js[^"]*)"')

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# -- HTTP ------------------------------------------------------------------------------------

class _Conn(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        nodelay(self.sock)


class HTTP:
    """One keep-alive HTTP/1.1 connection (reconnects once if the server closed it)."""

    def __init__(self, host: str, port: int, timeout: float = TIMEOUT, keep_alive: bool = True) -> None:
        self.host, self.port, self.timeout, self.keep_alive = host, port, timeout, keep_alive
        self.conn: _Conn | None = None

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        hdrs = {"User-Agent": "bokeh-flask-bench", "Accept": "*/*"}
        if not self.keep_alive:
            hdrs["Connection"] = "close"
        hdrs.update(headers or {})
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = _Conn(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("GET", path, headers=hdrs)
                resp = self.conn.getresponse()
                body = resp.read()
                out = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
                if not self.keep_alive or resp.will_close:
                    self.close()
                return out
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.BadStatusLine):
                self.close()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


class Page:
    """What a doc page tells the browser: token, root ids (document order), BokehJS URL."""

    def __init__(self, html: str) -> None:
        match = TOKEN_RE.search(html)
        if not match:
            raise ValueError("no session token in the page")
        self.token = match.group(1)
        self.root_ids = ROOT_ID_RE.findall(html)
        script = SCRIPT_RE.search(html)
        self.bokehjs = script.group(1) if script else None


def get_page(http: HTTP, path: str) -> Page:
    status, _, body = http.get(path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status}")
    return Page(body.decode("utf-8"))


# -- websocket -------------------------------------------------------------------------------

class Closed(ConnectionError):
    pass


def _mask(key: bytes, data: bytes) -> bytes:
    n = len(data)
    if not n:
        return data
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One masked, final client frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    return head + key + _mask(key, payload)


class Msg:
    __slots__ = ("header", "content_raw", "buffers", "_content")

    def __init__(self, header: dict, content_raw: bytes, buffers: dict[str, bytes]) -> None:
        self.header = header
        self.content_raw = content_raw
        self.buffers = buffers
        self._content = None

    @property
    def msgtype(self) -> str:
        return self.header["msgtype"]

    @property
    def reqid(self) -> str | None:
        return self.header.get("reqid")

    @property
    def content(self) -> Any:
        if self._content is None:
            self._content = json.loads(self.content_raw)
        return self._content


_ids = itertools.count(1)


def new_id() -> str:
    return f"{next(_ids):032X}"  # BokehJS: 32 upper-case hex characters


class BokehWS:
    """One Bokeh websocket over a raw blocking socket."""

    def __init__(self, host: str, port: int, path: str, token: str, timeout: float = TIMEOUT,
                 expect_ack: bool = True, quickack: bool = False) -> None:
        #: re-arm TCP_QUICKACK before every read (a diagnostic, not what browsers do): the
        #: client then ACKs at once, so a server that writes several small frames without
        #: TCP_NODELAY is not held back by Nagle's algorithm waiting for a delayed ACK
        self.quickack = quickack
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            nodelay(self.sock)
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: bokeh, {token}\r\nOrigin: http://{host}:{port}\r\n"
                "User-Agent: bokeh-flask-bench\r\n\r\n"
            )
            self.sock.sendall(request.encode("ascii"))
            buf = bytearray()
            for _ in range(64):
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Closed("connection closed during the handshake")
                buf += chunk
                if b"\r\n\r\n" in buf:
                    break
            head, sep, rest = bytes(buf).partition(b"\r\n\r\n")
            if not sep:
                raise ConnectionError("no end of the handshake response")
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                raise ConnectionError(f"handshake refused: {status!r}")
            self.buf = bytearray(rest)
            self.ack = self.recv_msg() if expect_ack else None
            if self.ack is not None and self.ack.msgtype != "ACK":
                raise ConnectionError(f"expected ACK, got {self.ack.msgtype}")
        except BaseException:
            self.sock.close()
            raise

    # frames
    def _fill(self, n: int) -> None:
        buf = self.buf
        while len(buf) < n:
            if self.quickack:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = self.sock.recv(max(262144, n - len(buf)))
            if not chunk:
                raise Closed("server closed the connection")
            buf += chunk

    def recv_frame(self) -> tuple[int, bytes]:
        """Next data frame (pings answered, pongs skipped; fragments joined). Bounded."""
        parts: list[bytes] = []
        first_op = None
        for _ in range(100000):
            self._fill(2)
            buf = self.buf
            b0, b1 = buf[0], buf[1]
            fin, opcode, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            off = 2
            if n == 126:
                self._fill(4)
                n = struct.unpack_from("!H", buf, 2)[0]
                off = 4
            elif n == 127:
                self._fill(10)
                n = struct.unpack_from("!Q", buf, 2)[0]
                off = 10
            key = b""
            if masked:
                self._fill(off + 4)
                key = bytes(buf[off:off + 4])
                off += 4
            payload = self._take(off, n)
            if key:
                payload = _mask(key, payload)
            if opcode == OP_PING:
                self.sock.sendall(encode_frame(OP_PONG, payload))
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(f"server closed the websocket: {code} {payload[2:]!r}")
            if opcode != OP_CONT:
                first_op = opcode
            parts.append(payload)
            if fin:
                return first_op or OP_TEXT, parts[0] if len(parts) == 1 else b"".join(parts)
        raise ConnectionError("too many fragments")

    def _take(self, off: int, n: int) -> bytes:
        buf = self.buf
        have = len(buf) - off
        if n > 1 << 20 and have < n:  # large payload: read straight into its own buffer
            out = bytearray(n)
            view = memoryview(out)
            view[:max(have, 0)] = buf[off:]
            got = max(have, 0)
            del buf[:]
            while got < n:
                r = self.sock.recv_into(view[got:], n - got)
                if not r:
                    raise Closed("server closed the connection mid-frame")
                got += r
            view.release()
            return bytes(out)
        self._fill(off + n)
        payload = bytes(buf[off:off + n])
        del buf[:off + n]
        return payload

    # messages
    def send_msg(self, msgtype: str, content: Any = None, content_json: str | None = None) -> str:
        msgid = new_id()
        header = f'{{"msgid":"{msgid}","msgtype":"{msgtype}"}}'.encode()
        body = (content_json if content_json is not None else json.dumps({} if content is None else content)).encode()
        self.sock.sendall(encode_frame(OP_TEXT, header) + encode_frame(OP_TEXT, b"{}") + encode_frame(OP_TEXT, body))
        return msgid

    def recv_msg(self) -> Msg:
        _, h = self.recv_frame()
        header = json.loads(h)
        self.recv_frame()  # metadata
        _, content = self.recv_frame()
        buffers: dict[str, bytes] = {}
        for _ in range(int(header.get("num_buffers", 0))):
            _, ref = self.recv_frame()
            _, data = self.recv_frame()
            buffers[json.loads(ref)["id"]] = data
        return Msg(header, content, buffers)

    def request(self, msgtype: str, content: Any = None, limit: int = 1000) -> Msg:
        msgid = self.send_msg(msgtype, content)
        for _ in range(limit):
            msg = self.recv_msg()
            if msg.reqid == msgid:
                return msg
        raise ConnectionError(f"no reply to {msgtype} in {limit} messages")

    def pull(self) -> Msg:
        reply = self.request("PULL-DOC-REQ")
        if reply.msgtype != "PULL-DOC-REPLY":
            raise ConnectionError(f"PULL-DOC-REQ answered with {reply.msgtype}")
        return reply

    def close(self, code: int = 1001) -> None:
        try:
            self.sock.sendall(encode_frame(OP_CLOSE, struct.pack("!H", code)))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


# -- documents ---------------------------------------------------------------------------------

def walk(value: Any):
    stack = [value]
    for _ in range(10_000_000):
        if not stack:
            return
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def model_id_by_name(doc_json: dict, name: str) -> str:
    for m in walk(doc_json):
        if m.get("type") == "object" and m.get("attributes", {}).get("name") == name:
            return m["id"]
    raise KeyError(name)


def roots_of(pull_reply: Msg) -> list[tuple[str, str]]:
    """(id, model type name) of each root of a PULL-DOC-REPLY, in order."""
    return [(r.get("id"), r.get("name")) for r in pull_reply.content["doc"]["roots"]]


class Session:
    """A page load plus its websocket, ACKed and pulled: what one browser tab holds."""

    def __init__(self, host: str, port: int, app: str, http: HTTP | None = None, pull: bool = True,
                 timeout: float = TIMEOUT, quickack: bool = False) -> None:
        own = http is None
        http = http or HTTP(host, port, timeout=timeout)
        try:
            self.page = get_page(http, f"/{app}")
        finally:
            if own:
                http.close()
        self.ws = BokehWS(host, port, f"/{app}/ws", self.page.token, timeout=timeout, quickack=quickack)
        try:
            self.doc = self.ws.pull() if pull else None
        except BaseException:
            self.ws.close()
            raise

    def close(self) -> None:
        self.ws.close()


class RoundTripper:
    """Drives the trivial app: TextInput ``ti`` value -> Python on_change -> Div ``out`` text."""

    def __init__(self, session: Session, tag: str) -> None:
        self.ws = session.ws
        doc = session.doc.content["doc"]
        self.ti = model_id_by_name(doc, "ti")
        self.out = model_id_by_name(doc, "out")
        self.tag = tag
        self.n = 0

    def once(self) -> float:
        """One round trip; seconds from sending the PATCH-DOC to the Div's PATCH-DOC arriving."""
        self.n += 1
        value = f"{self.tag}-{self.n}"
        content = ('{"events":[{"kind":"ModelChanged","model":{"id":"%s"},"attr":"value","new":"%s"}]}'
                   % (self.ti, value))
        t0 = time.perf_counter()
        msgid = self.ws.send_msg("PATCH-DOC", content_json=content)
        t_patch = None
        ok = False
        for _ in range(50):
            msg = self.ws.recv_msg()
            if msg.msgtype == "PATCH-DOC" and t_patch is None:
                t = time.perf_counter()
                for ev in msg.content.get("events", []):
                    if (ev.get("kind") == "ModelChanged" and ev.get("attr") == "text"
                            and ev.get("model", {}).get("id") == self.out and ev.get("new") == "got " + value):
                        t_patch = t
            elif msg.reqid == msgid:
                if msg.msgtype != "OK":
                    raise ConnectionError(f"PATCH-DOC answered with {msg.msgtype}: {msg.content_raw[:200]!r}")
                ok = True
            if ok and t_patch is not None:
                return t_patch - t0
        raise ConnectionError("no Div PATCH-DOC / OK for a round trip within 50 messages")


class SliderTripper:
    """Drives examples/sliders.py: Slider ``offset`` value -> Python recomputes the
    ColumnDataSource's data and the ``status`` Div; one round trip = the OK and the
    PATCH-DOC carrying the status text for this value."""

    def __init__(self, session: Session, tag: str) -> None:
        self.ws = session.ws
        doc = session.doc.content["doc"]
        self.slider = model_id_by_name(doc, "offset")
        self.status = model_id_by_name(doc, "status")
        self.n = int("".join(c for c in tag if c.isdigit()) or 0) * 7

    def once(self) -> float:
        self.n += 1
        value = round((self.n % 99) / 10 - 4.9, 1) or 0.05
        content = ('{"events":[{"kind":"ModelChanged","model":{"id":"%s"},"attr":"value","new":%s}]}'
                   % (self.slider, value))
        t0 = time.perf_counter()
        msgid = self.ws.send_msg("PATCH-DOC", content_json=content)
        got_status = ok = False
        for _ in range(50):
            msg = self.ws.recv_msg()
            if msg.msgtype == "PATCH-DOC" and not got_status:
                got_status = any(ev.get("attr") == "text" and ev.get("model", {}).get("id") == self.status
                                 for ev in msg.content.get("events", []))
            elif msg.reqid == msgid:
                if msg.msgtype != "OK":
                    raise ConnectionError(f"PATCH-DOC answered with {msg.msgtype}: {msg.content_raw[:200]!r}")
                ok = True
            if ok and got_status:
                return time.perf_counter() - t0
        raise ConnectionError("no status PATCH-DOC / OK for a slider round trip within 50 messages")
