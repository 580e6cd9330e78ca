"""Helpers of the hardening tests (issue 3): sizes, the memory log, the server log, raw
sockets and frames.

Plain functions and classes, no fixtures. Servers come from :mod:`tests.support.servers`
and the raw Bokeh-protocol client from :mod:`tests.support.wire`.

Sizes: each test has a CI size (run by default) and a larger size behind
``@pytest.mark.slow`` (deselected by default). ``HARDENING_SCALE`` (a float, default 1)
multiplies the slow sizes, e.g. ``HARDENING_SCALE=3 pytest -m slow tests/hardening``.
"""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import time
from dataclasses import dataclass
from typing import Callable

import requests

from tests.support.servers import APPS
from tests.support.wire import BokehWS, page_token

HELLO = APPS / "hello.py"

TIMEOUT = 10.0

#: Short lifetimes and a memory line every 200 ms (parsed by :func:`memory_stats`).
FAST_SETTINGS = {"mem_log_frequency": 200, "unused_session_lifetime": 500, "check_unused_sessions": 200}


def settings_env(**extra) -> dict[str, str]:
    return {"BOKEH_FLASK_SETTINGS": json.dumps({**FAST_SETTINGS, **extra})}


def scale() -> float:
    return float(os.environ.get("HARDENING_SCALE", "1") or 1)


def slow_size(base: int) -> int:
    return max(1, int(base * scale()))


# -- the memory log -------------------------------------------------------------------------

_MEMORY = re.compile(r"\[pid (\d+)\] memory: ([\d.]+) MiB RSS, (\d+) sessions, (\d+) connections, (\d+) greenlets")


@dataclass(frozen=True)
class MemoryStats:
    pid: int
    rss_mib: float
    sessions: int
    connections: int
    greenlets: int
    position: int  # offset of the line in the log, to wait for newer ones

    def __str__(self) -> str:
        return (f"{self.rss_mib:.1f} MiB RSS, {self.sessions} sessions, "
                f"{self.connections} connections, {self.greenlets} greenlets")


def memory_lines(server) -> list[MemoryStats]:
    text = server.log_text()
    return [MemoryStats(int(m[1]), float(m[2]), int(m[3]), int(m[4]), int(m[5]), m.start())
            for m in _MEMORY.finditer(text)]


def memory_stats(server, after: int = -1, timeout: float = 10.0) -> MemoryStats:
    """The last memory line, waiting for one that starts after log offset ``after``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = memory_lines(server)
        if lines and lines[-1].position > after:
            return lines[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no memory line after offset {after}:\n{server.log_text()[-2000:]}")
        time.sleep(0.05)


def wait_for_memory(server, predicate: Callable[[MemoryStats], bool], timeout: float,
                    what: str = "condition") -> MemoryStats:
    """Poll the memory log until ``predicate`` holds for a line logged after this call."""
    start = len(server.log_text())
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        lines = [s for s in memory_lines(server) if s.position >= start]
        if lines:
            last = lines[-1]
            if predicate(last):
                return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s; last memory line: {last}\n"
                         f"{server.log_text()[-3000:]}")


def touch(server) -> None:
    """A request that starts the server's periodic jobs (they start on the first request)."""
    requests.get(server.url + "/hello/metadata", timeout=TIMEOUT)


# -- the server log -----------------------------------------------------------------------

def tracebacks(log_text: str) -> list[str]:
    """Excerpts around every ``Traceback`` in a log."""
    out = []
    for m in re.finditer("Traceback", log_text):
        out.append(log_text[max(0, m.start() - 300): m.start() + 1500])
    return out


# -- raw sockets ----------------------------------------------------------------------------

WS_KEY = base64.b64encode(b"hardening-tests!").decode()


def connect(port: int, timeout: float = TIMEOUT) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def read_http_head(sock: socket.socket, limit: int = 65536) -> tuple[int, dict[str, str], bytes]:
    """Read a response head; (status, lower-cased headers, bytes already read past it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed during the response head: {data[:300]!r}")
        data += chunk
        if len(data) > limit:
            raise AssertionError(f"response head over {limit} bytes")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def read_body(sock: socket.socket, headers: dict[str, str], rest: bytes) -> bytes:
    length = int(headers.get("content-length", "0") or 0)
    body = rest
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return body[:length]


def handshake_request(path: str, port: int, protocol: str | bytes | None, origin: str | None = None,
                      extra: list[tuple[str, str]] = (), version: str = "13") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {WS_KEY}", f"Sec-WebSocket-Version: {version}"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines += [f"{k}: {v}" for k, v in extra]
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
    if protocol is not None:
        value = protocol if isinstance(protocol, bytes) else protocol.encode("latin-1")
        head += b"Sec-WebSocket-Protocol: " + value + b"\r\n"
    return head + b"\r\n"


def raw_handshake(port: int, path: str, protocol: str | bytes | None, origin: str | None = None,
                  extra: list[tuple[str, str]] = (), timeout: float = TIMEOUT
                  ) -> tuple[int, dict[str, str], bytes, socket.socket]:
    """Send a websocket handshake; (status, headers, body-or-leftover, socket). The caller
    closes the socket. For a non-101 answer the body is read whole."""
    sock = connect(port, timeout)
    try:
        sock.sendall(handshake_request(path, port, protocol, origin, extra))
        status, headers, rest = read_http_head(sock)
        if status != 101:
            rest = read_body(sock, headers, rest)
        return status, headers, rest, sock
    except BaseException:
        sock.close()
        raise


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    """A masked client frame."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def text_frame(text: str) -> bytes:
    return frame(0x1, text.encode())


def close_frame(code: int = 1000) -> bytes:
    return frame(0x8, struct.pack("!H", code))


class FrameReader:
    """Reads unmasked server frames from a raw socket."""

    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buf = buffered

    def _need(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed mid-frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self) -> tuple[int, bytes]:
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        return b0 & 0x0F, self._need(n)

    def read_data(self) -> tuple[int, bytes]:
        """Next text/binary frame; pings are skipped; ConnectionError on a close frame."""
        while True:
            opcode, payload = self.read()
            if opcode in (0x1, 0x2, 0x0):
                return opcode, payload
            if opcode == 0x8:
                raise ConnectionError(f"server closed: {payload[:2].hex()} {payload[2:]!r}")

    def read_message(self) -> dict:
        """One whole Bokeh message's header (buffers skipped)."""
        return self.read_full_message()[0]

    def read_full_message(self) -> tuple[dict, object]:
        """One whole Bokeh message: (header, content); buffers skipped."""
        _, header = self.read_data()
        head = json.loads(header)
        self.read_data()
        _, content = self.read_data()
        for _ in range(head.get("num_buffers", 0)):
            self.read_data()
            self.read_data()
        return head, json.loads(content)


_msg_ids = iter(range(10**9))


def bokeh_message(msgtype: str, content: dict | None = None, **header) -> list[bytes]:
    """The raw frames of one client Bokeh message (no buffers)."""
    head = {"msgid": f"H{next(_msg_ids):031X}", "msgtype": msgtype, **header}
    return [text_frame(json.dumps(head)), text_frame("{}"), text_frame(json.dumps(content or {}))]


def fresh_session_works(server, app: str = "hello") -> float:
    """Page + websocket + PULL for a brand-new session; returns the seconds it took."""
    start = time.monotonic()
    token = page_token(server.url, app)
    with BokehWS(f"{server.ws_url}/{app}/ws", token) as ws:
        assert ws.ack.msgtype == "ACK"
        reply = ws.pull()
        assert reply.msgtype == "PULL-DOC-REPLY", reply
        assert reply.content["doc"]["roots"], reply
    return time.monotonic() - start
