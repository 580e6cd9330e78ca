"""A stopped host refuses new connections at once, as a load balancer needs to move on.

On SIGTERM gunicorn's master closes its listening socket, and a worker that only stopped
accepting kept its copy open until it exited: connections were queued in the backlog and
reset later (0.5 s and more), so a balancer's failover waited for them. A draining worker now
closes its copy; here a half-sent request keeps the worker alive in its graceful wait, and
a connect made once it has drained (its websocket closed with 1001) must be refused.
"""
from __future__ import annotations

import os
import signal
import socket

import pytest

from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, Closed, page_token


def test_a_draining_worker_refuses_new_connections_at_once():
    server = launch("cli", apps=[APPS / "hello.py"], wait_path="/hello")
    try:
        ws = BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url, "hello"))
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # no end of headers: in flight
        os.kill(server.process.pid, signal.SIGTERM)
        with pytest.raises(Closed) as closed:
            ws.recv_until(lambda m: False)
        assert closed.value.code == 1001
        assert server.process.poll() is None  # still draining: the half-sent request holds it
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
        slow.close()
        ws.close()
    finally:
        server.stop()
