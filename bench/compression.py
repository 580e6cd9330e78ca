"""permessage-deflate: bytes on the wire and server CPU per message, with and without
``--websocket-compression-level``, bokeh-flask and ``bokeh serve`` side by side in one run.

.. code-block:: bash

    .venv-3.12/bin/python bench/compression.py                  # ~2 minutes
    .venv-3.12/bin/python bench/compression.py --messages 100 --level 1 --out /tmp/c.md

Both servers serve ``bench/apps/payloads.py`` started together, first without the flags,
then with ``--websocket-compression-level LEVEL`` (mem level: Tornado's default, 8). One
client per server, on wsproto, offers permessage-deflate as browsers do. A message is one
round trip: a PATCH-DOC setting the TextInput, whose callback replaces the
ColumnDataSource's data; the client reads the server's PATCH-DOC and the OK. Measured per
message over ``--messages`` after 5 warm-up messages: bytes the client read off the socket
(frames included), the server tree's CPU (utime + stime from /proc), and the round trip.
Payloads: ``json``, 2 x 20,000 random floats as lists (JSON text, ~0.8 MB); ``binary``, the
same as numpy arrays (two 160,000-byte buffers); ``smooth``, buffers of the same size holding
a time axis and a sine. Random floats are the hard case for deflate.
"""
from __future__ import annotations

import argparse
import itertools
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client import HTTP, TIMEOUT, get_page, model_id_by_name, nodelay  # noqa: E402
from servers import KINDS, LABEL, ROOT, start_pair  # noqa: E402

APP = str(ROOT / "bench" / "apps" / "payloads.py")
PAYLOADS = ("json", "binary", "smooth")
WARM_UP = 5


class DeflateWS:
    """One Bokeh websocket on wsproto, offering permessage-deflate when ``offer``."""

    _ids = itertools.count()

    def __init__(self, host: str, port: int, offer: bool) -> None:
        http = HTTP(host, port)
        token = get_page(http, "/payloads").token
        http.close()
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        nodelay(self.sock)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.wire_bytes = 0
        self.sock.sendall(self.ws.send(Request(
            host=f"{host}:{port}", target="/payloads/ws", subprotocols=["bokeh", token],
            extensions=[PerMessageDeflate()] if offer else [],
            extra_headers=[("Origin", f"http://{host}:{port}")])))
        self._events = self._read()
        accepted = next(self._events)
        if not isinstance(accepted, AcceptConnection):
            raise RuntimeError(f"handshake refused: {accepted}")
        self.compressed = bool(accepted.extensions)
        self.recv()  # ACK

    def _read(self) -> Iterator[Any]:
        for _ in range(10_000_000):
            data = self.sock.recv(262144)
            if not data:
                raise ConnectionError("server closed the socket")
            self.wire_bytes += len(data)
            self.ws.receive_data(data)
            yield from self.ws.events()

    def _message(self) -> str | bytes:
        parts: list[Any] = []
        for event in self._events:
            if isinstance(event, CloseConnection):
                raise ConnectionError(f"closed: {event.code} {event.reason}")
            if isinstance(event, Message):
                parts.append(event.data)
                if event.message_finished:
                    return ("" if isinstance(event, TextMessage) else b"").join(parts)
        raise ConnectionError("no more events")

    def recv(self) -> tuple[dict, dict]:
        header = json.loads(self._message())
        self._message()
        content = json.loads(self._message())
        for _ in range(header.get("num_buffers", 0)):
            self._message()
            self._message()
        return header, content

    def send(self, msgtype: str, content: dict) -> str:
        msgid = f"C{next(self._ids):031X}"
        frames = (json.dumps({"msgid": msgid, "msgtype": msgtype}), "{}", json.dumps(content))
        self.sock.sendall(b"".join(self.ws.send(TextMessage(data=f)) for f in frames))
        return msgid

    def close(self) -> None:
        self.sock.close()


def round_trip(ws: DeflateWS, ti_id: str, value: str) -> None:
    """Set the TextInput; return once the data's PATCH-DOC and the OK have both arrived."""
    msgid = ws.send("PATCH-DOC", {"events": [{"kind": "ModelChanged", "model": {"id": ti_id},
                                              "attr": "value", "new": value}]})
    ok = patched = False
    for _ in range(100):
        header, content = ws.recv()
        ok = ok or header.get("reqid") == msgid
        patched = patched or (header["msgtype"] == "PATCH-DOC" and any(
            e.get("kind") == "ColumnDataChanged" or e.get("attr") == "data" for e in content["events"]))
        if ok and patched:
            return
    raise RuntimeError("no PATCH-DOC with the data")


def measure(server: Any, payload: str, messages: int, seconds: float, offer: bool) -> dict[str, Any]:
    """At least ``messages`` round trips and ``seconds`` of them (CPU time is counted in
    10 ms ticks), at most 100 times ``messages``."""
    ws = DeflateWS(server.host, server.port, offer)
    try:
        ws.send("PULL-DOC-REQ", {})
        header, content = ws.recv()
        ti_id = model_id_by_name(content["doc"], "ti")
        for i in range(WARM_UP):
            round_trip(ws, ti_id, f"{payload}:{i}")
        server.wait_idle(10)
        bytes0, cpu0, times = ws.wire_bytes, server.cpu(), []
        start = time.perf_counter()
        for i in range(messages * 100):
            if i >= messages and time.perf_counter() - start >= seconds:
                break
            t0 = time.perf_counter()
            round_trip(ws, ti_id, f"{payload}:{WARM_UP + i}")
            times.append(time.perf_counter() - t0)
        cpu, wire, messages = server.cpu() - cpu0, ws.wire_bytes - bytes0, len(times)
    finally:
        ws.close()
    return {"compressed": ws.compressed, "messages": messages, "bytes_per_msg": round(wire / messages),
            "cpu_ms_per_msg": round(cpu / messages * 1000, 2),
            "rtt_p50_ms": round(statistics.median(times) * 1000, 2)}


def run(messages: int, seconds: float, level: int, log_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """results[mode][payload][kind]; mode ``off`` (no flags) or ``on`` (the level given)."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for mode, extra in (("off", []), ("on", ["--websocket-compression-level", str(level)])):
        servers = start_pair([APP], extra=extra, log_dir=log_dir)
        try:
            for index, payload in enumerate(PAYLOADS):
                order = KINDS if index % 2 == 0 else tuple(reversed(KINDS))
                for kind in order:
                    print(f"  {mode:3} {payload:6} {LABEL[kind]} ...", file=sys.stderr, flush=True)
                    results.setdefault(mode, {}).setdefault(payload, {})[kind] = measure(
                        servers[kind], payload, messages, seconds, offer=True)
        finally:
            for server in servers.values():
                server.stop()
    return results


def report(results: dict[str, dict[str, dict[str, Any]]], messages: int, seconds: float, level: int) -> str:
    lines = [f"# permessage-deflate: bytes on the wire and server CPU per message "
             f"({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"`bench/compression.py --messages {messages} --seconds {seconds:g} --level {level}`: "
             "both servers with no flags "
             f"(off), then both with `--websocket-compression-level {level}` (on); one round trip per "
             "message (see the module's docstring). Ratios: bokeh-flask / bokeh serve; on/off: the same "
             "server with / without compression.", "",
             "| payload | compression | bokeh-flask bytes/msg | bokeh serve bytes/msg | ratio "
             "| bokeh-flask CPU ms/msg | bokeh serve CPU ms/msg | ratio "
             "| bokeh-flask RTT p50 ms | bokeh serve RTT p50 ms | messages (flask / bokeh) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for payload in PAYLOADS:
        for mode in ("off", "on"):
            f, b = (results[mode][payload][k] for k in KINDS)
            assert f["compressed"] == b["compressed"] == (mode == "on"), (mode, f, b)
            lines.append(
                f"| {payload} | {mode} | {f['bytes_per_msg']:,} | {b['bytes_per_msg']:,} "
                f"| {f['bytes_per_msg'] / b['bytes_per_msg']:.3f}x | {f['cpu_ms_per_msg']} "
                f"| {b['cpu_ms_per_msg']} | {f['cpu_ms_per_msg'] / b['cpu_ms_per_msg']:.2f}x "
                f"| {f['rtt_p50_ms']} | {b['rtt_p50_ms']} | {f['messages']} / {b['messages']} |")
    lines += ["", "| payload | server | bytes on/off | CPU ms/msg on - off | CPU on/off |", "|---|---|---|---|---|"]
    for payload in PAYLOADS:
        for kind in KINDS:
            off, on = results["off"][payload][kind], results["on"][payload][kind]
            lines.append(f"| {payload} | {LABEL[kind]} | {on['bytes_per_msg'] / off['bytes_per_msg']:.3f} "
                         f"| {on['cpu_ms_per_msg'] - off['cpu_ms_per_msg']:+.2f} "
                         f"| {on['cpu_ms_per_msg'] / off['cpu_ms_per_msg']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30, help="least measured messages per case (default 30)")
    parser.add_argument("--seconds", type=float, default=5.0, help="least measuring time per case (default 5)")
    parser.add_argument("--level", type=int, default=6, help="zlib level for the 'on' runs (default 6)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    log_dir = Path(__import__("tempfile").mkdtemp(prefix="bench-compression-"))
    print(f"server logs in {log_dir}", file=sys.stderr)
    results = run(args.messages, args.seconds, args.level, log_dir)
    text = report(results, args.messages, args.seconds, args.level)
    text += "\n## Raw figures\n\n```json\n" + json.dumps(results, indent=1) + "\n```\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
