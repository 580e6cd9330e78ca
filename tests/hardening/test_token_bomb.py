"""Bounded tokens (issue 21, item 4), from the attacker's side against real servers.

Bokeh's token payload is zlib-compressed JSON; Bokeh inflates it whole, so one 57 KB token
in ``Sec-WebSocket-Protocol`` became 34 MB of JSON in the worker. Here every token is
refused with a 4xx before any session work, with one warning line and no traceback:
the attacker's 57 KB token by its length, the densest bomb under the length limit by its
inflated size; a page request no token could carry is a 431. While four bombs arrive at
once, the worker's peak RSS stays within 32 MiB of where it was and another session keeps
working. (Timings are measured by ``bench/token_bomb.py``, not asserted here.)
"""
from __future__ import annotations

import base64
import json
import threading
import zlib
from pathlib import Path

import pytest
import requests

from bokeh_flask.app.sessions.tokens import MAX_TOKEN_LENGTH, MAX_TOKEN_PAYLOAD
from tests.support.bokeh_version import embed_path
from tests.support.hardening import HELLO, fresh_session_works, raw_handshake, tracebacks
from tests.support.servers import launch
from tests.support.wire import BokehWS, page_token

#: How far the worker's peak RSS may rise while the bombs arrive.
RSS_ALLOWANCE_MIB = 32
#: Bombs each of the four attacker threads sends, one after another.
BOMBS_PER_THREAD = 4


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def bomb(inflated: int) -> str:
    """An unsigned token whose payload inflates to ``inflated`` bytes of JSON."""
    text = b'{"headers": {"X": "' + b"a" * inflated + b'"}}'
    head = {"session_id": "bomb", "session_expiry": 4102444800, "__bk__zlib_": b64(zlib.compress(text, 9))}
    return b64(json.dumps(head).encode())


#: The finding's token: 57 KB (gunicorn takes header lines up to 64 KiB), 32 MiB inflated.
LONG_BOMB = bomb(32 * 1024 * 1024)
#: The densest bomb within the length limit: 17 MiB inflated.
DENSE_BOMB = bomb(17 * 1024 * 1024)
#: A bomb that fits in a request line (gunicorn takes at most 8190 bytes), for ``?bokeh-token=``.
URL_BOMB = bomb(4 * 1024 * 1024)


def test_the_bombs_are_what_they_claim():
    assert 56_000 < len(LONG_BOMB) < 65536 - 100
    assert MAX_TOKEN_LENGTH - 2000 < len(DENSE_BOMB) <= MAX_TOKEN_LENGTH
    assert len(URL_BOMB) < 8190 - 100
    assert 4 * 1024 * 1024 > 60 * MAX_TOKEN_PAYLOAD


@pytest.fixture(scope="module", params=["gunicorn", "flask"])
def server(request):
    s = launch(request.param, apps=[HELLO])
    yield s
    s.stop()


def handshake(port: int, token: str) -> tuple[int, str]:
    status, _, body, sock = raw_handshake(port, "/hello/ws", f"bokeh, {token}", timeout=30)
    sock.close()
    return status, body.decode("utf-8", "replace")


@pytest.mark.parametrize("token, why", [(LONG_BOMB, "over the limit of"), (DENSE_BOMB, "inflates past the limit")],
                         ids=["long", "dense"])
def test_bomb_on_the_websocket_is_a_400_with_one_warning(server, token, why):
    before = len(server.log_text())
    status, body = handshake(server.port, token)
    assert status == 400, body
    assert why in body and "Traceback" not in body
    server.wait_for_log("Refusing websocket: token")
    new = server.log_text()[before:]
    lines = [line for line in new.splitlines() if "Refusing websocket" in line]
    assert len(lines) == 1 and why in lines[0], new
    assert not tracebacks(new)


@pytest.mark.parametrize("path", ["/hello/", embed_path("/hello")])
def test_bomb_as_bokeh_token_argument_is_a_400(server, path):
    before = len(server.log_text())
    response = requests.get(server.url + path, params={"bokeh-token": URL_BOMB}, timeout=30)
    assert response.status_code == 400, response.text[:300]
    assert "inflates past the limit" in response.text
    server.wait_for_log("Refusing bokeh-token argument")
    assert not tracebacks(server.log_text()[before:])


def test_page_whose_headers_would_make_a_token_too_large_is_a_431(server):
    """A request no token could carry gets 431, not a page whose websocket would be refused."""
    before = len(server.log_text())
    headers = {f"X-Filler-{i}": "y" * 15000 for i in range(5)}
    response = requests.get(server.url + "/hello/", headers=headers, timeout=30)
    assert response.status_code == 431, response.text[:300]
    server.wait_for_log("Refusing a page request: its headers and cookies are too large to keep for its session")
    assert not tracebacks(server.log_text()[before:])


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_four_concurrent_bombs_cost_the_worker_no_memory_and_others_keep_working():
    server = launch("gunicorn", apps=[HELLO])
    try:
        (worker,) = server.worker_pids()
        token = page_token(server.url)
        with BokehWS(f"{server.ws_url}/hello/ws", token) as other:
            other.pull()
            fresh_session_works(server)
            Path(f"/proc/{worker}/clear_refs").write_text("5")  # VmHWM := VmRSS
            baseline = status_mib(worker, "VmRSS")
            statuses: list[int] = []
            start = threading.Barrier(5)

            def attack(token: str) -> None:
                start.wait()
                for _ in range(BOMBS_PER_THREAD):
                    statuses.append(handshake(server.port, token)[0])

            threads = [threading.Thread(target=attack, args=(t,)) for t in (LONG_BOMB, DENSE_BOMB) * 2]
            for thread in threads:
                thread.start()
            start.wait()
            while any(thread.is_alive() for thread in threads):
                assert other.pull().msgtype == "PULL-DOC-REPLY"
                fresh_session_works(server)
            for thread in threads:
                thread.join()
            assert statuses == [400] * 4 * BOMBS_PER_THREAD
            peak = status_mib(worker, "VmHWM")
            assert peak - baseline <= RSS_ALLOWANCE_MIB, f"peak RSS {peak:.1f} MiB, before {baseline:.1f} MiB"
            assert other.pull().msgtype == "PULL-DOC-REPLY"
        assert not tracebacks(server.log_text())
    finally:
        server.stop()
