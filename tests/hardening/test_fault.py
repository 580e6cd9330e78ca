"""Fault test: many sessions whose clients die abruptly, then the server must recover.

A gunicorn gevent server with short lifetimes (unused sessions expire 0.5 s after their
last connection closes) and a memory line every 200 ms. N clients (CI 200, slow 1000 x
``HARDENING_SCALE``) each load the page, open the websocket, pull the document, then are
killed at a random point (seeded; the seed is printed):

* ``rst-handshake``: half the upgrade request, then a TCP RST;
* ``rst-after-upgrade``: RST right after the 101, before reading the ACK (no PULL);
* ``rst-during-reply``: PULL sent, RST while the server writes the reply;
* ``half-frame``: after the PULL, a frame header whose 16-bit length claims 4000 bytes,
  10 of them sent, then RST;
* ``half-message``: after the PULL, two of a Bokeh message's three frames, then RST;
* ``after-patch``: a PATCH-DOC that triggers an app callback (the server answers with a
  PATCH-DOC and OK), RST without reading them;
* ``fin-no-close``: FIN (shutdown) without a close frame;
* ``silent``: kept open without FIN or close frame until the end, then closed.

Afterwards a fresh session is served at once (while the silent sockets are still open),
and once they are closed and the lifetime has passed, the memory log must report 0
sessions, 0 connections, and greenlets back within +10 of the idle baseline.
"""
from __future__ import annotations

import os
import random
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import wire
from tests.support.hardening import (
    HELLO,
    FrameReader,
    bokeh_message,
    connect,
    frame,
    fresh_session_works,
    handshake_request,
    memory_lines,
    memory_stats,
    read_http_head,
    reset,
    settings_env,
    slow_size,
    touch,
    tracebacks,
    wait_for_memory,
)
from tests.support.servers import launch
from tests.support.wire import page_token

MODES = ["rst-handshake", "rst-after-upgrade", "rst-during-reply", "half-frame", "half-message",
         "after-patch", "fin-no-close", "silent"]
GREENLET_MARGIN = 10
#: A fresh session while the wreckage is still there must not wait behind it.
FRESH_SESSION_MAX_S = 2.0


def start_server():
    s = launch("gunicorn", apps=[HELLO], env=settings_env())
    touch(s)
    return s


def idle_baseline(server) -> object:
    """Warm up (sessions created and expired), then the idle memory line."""
    for _ in range(5):
        fresh_session_works(server)
    return wait_for_memory(server, lambda m: m.sessions == 0 and m.connections == 0, timeout=30,
                           what="idle after warm-up")


def text_input_id(content: dict) -> str:
    return wire.model_by_name(content["doc"], "ti")["id"]


def client(server, mode: str) -> socket.socket | None:
    """One client killed as ``mode`` says; returns the socket when it must stay open."""
    token = page_token(server.url)
    request = handshake_request("/hello/ws", server.port, f"bokeh, {token}")
    sock = connect(server.port)
    try:
        if mode == "rst-handshake":
            sock.sendall(request[: len(request) // 2])
            reset(sock)
            return None
        sock.sendall(request)
        status, _, rest = read_http_head(sock)
        assert status == 101, status
        if mode == "rst-after-upgrade":
            reset(sock)
            return None
        reader = FrameReader(sock, rest)
        assert reader.read_message()["msgtype"] == "ACK"
        sock.sendall(b"".join(bokeh_message("PULL-DOC-REQ")))
        if mode == "rst-during-reply":
            reset(sock)
            return None
        head, content = reader.read_full_message()
        assert head["msgtype"] == "PULL-DOC-REPLY", head
        if mode == "half-frame":
            whole = frame(0x1, b"x" * 4000)  # 16-bit length form: 4 header bytes + 4 mask bytes
            sock.sendall(whole[:8 + 10])
            reset(sock)
        elif mode == "half-message":
            sock.sendall(b"".join(bokeh_message("PULL-DOC-REQ")[:2]))
            reset(sock)
        elif mode == "after-patch":
            event = wire.model_changed(text_input_id(content), "value", f"fault-{random.random()}")
            sock.sendall(b"".join(bokeh_message("PATCH-DOC", {"events": [event]})))
            reset(sock)
        elif mode == "fin-no-close":
            sock.shutdown(socket.SHUT_WR)
            sock.close()
        elif mode == "silent":
            return sock
        else:
            raise ValueError(mode)
        return None
    except BaseException:
        reset(sock)
        raise


def run_fault(server, n: int) -> dict:
    seed = int(os.environ.get("HARDENING_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    modes = [rng.choice(MODES) for _ in range(n)]
    baseline = idle_baseline(server)
    print(f"\nfault: seed {seed}, {n} clients {dict(Counter(modes))}; idle baseline: {baseline}")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda m: client(server, m), modes))
    kept = [s for s in results if s is not None]
    clients_s = time.monotonic() - started
    during = memory_stats(server, after=-1)
    fresh_s = fresh_session_works(server)
    print(f"fault: clients done in {clients_s:.1f}s; server then: {during}; "
          f"fresh session took {fresh_s:.3f}s with {len(kept)} silent sockets open")
    for sock in kept:
        sock.close()
    closed_at = time.monotonic()
    final = wait_for_memory(
        server,
        lambda m: m.sessions == 0 and m.connections == 0 and m.greenlets <= baseline.greenlets + GREENLET_MARGIN,
        timeout=60, what="0 sessions, 0 connections and greenlets back to baseline")
    recovered_s = time.monotonic() - closed_at
    peak = max((m for m in memory_lines(server) if m.position > baseline.position),
               key=lambda m: m.sessions, default=during)
    print(f"fault: peak {peak}; recovered in {recovered_s:.1f}s after closing the silent sockets: {final}")
    return {"baseline": baseline, "final": final, "fresh_s": fresh_s, "kept": len(kept), "peak": peak,
            "during": during}


@pytest.fixture(scope="module")
def fault_server():
    s = start_server()
    yield s
    s.stop()


def _check(server, outcome) -> None:
    final, baseline = outcome["final"], outcome["baseline"]
    assert outcome["fresh_s"] < FRESH_SESSION_MAX_S, (
        f"a fresh session took {outcome['fresh_s']:.2f}s (limit {FRESH_SESSION_MAX_S}s) right after "
        f"the faulty clients; server then: {outcome['during']}")
    assert final.sessions == 0 and final.connections == 0, final
    assert final.greenlets <= baseline.greenlets + GREENLET_MARGIN, (baseline, final)
    # the wreckage is handled, not crashed on
    log = server.log_text()
    assert "websocket handler failed" not in log, tracebacks(log)[:3]
    assert not tracebacks(log), tracebacks(log)[:3]
    # and the server still works normally afterwards
    fresh_session_works(server)


def test_abrupt_clients_leave_no_sessions_connections_or_greenlets(fault_server):
    _check(fault_server, run_fault(fault_server, 200))


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_abrupt_clients_slow():
    server = start_server()
    try:
        _check(server, run_fault(server, slow_size(1000)))
    finally:
        server.stop()
