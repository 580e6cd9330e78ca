"""A worker out of file descriptors says so in one line, keeps its sessions, and recovers.

gunicorn runs with an open-files limit of 100 (soft and hard) and an explicit
``--worker-connections 1000`` (an operator's choice is kept, not capped to the limit); idle
TCP connections use up the rest. gevent's server then fails each ``accept`` with EMFILE and retries up to once a
second: the log must carry bokeh-flask's one line (what happened, what to do), not a
traceback per retry; a websocket opened before keeps working, and once the connections
close the worker answers new requests again.
"""
from __future__ import annotations

import socket

import requests

from tests.support.hardening import HELLO
from tests.support.servers import launch
from tests.support.wire import BokehWS, page_token

OPEN_FILES = 100
#: More than the limit: some connections wait in the listen backlog.
CONNECTIONS = 150


def test_out_of_descriptors_is_one_log_line_and_the_worker_recovers():
    server = launch("gunicorn", apps=[HELLO], open_files=OPEN_FILES,
                    env={"GUNICORN_CMD_ARGS": "--worker-connections 1000"})
    idle: list[socket.socket] = []
    try:
        with BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url)) as ws:
            assert ws.pull().msgtype == "PULL-DOC-REPLY"
            for _ in range(CONNECTIONS):
                idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            server.wait_for_log("out of file descriptors (Too many open files)", timeout=30)
            # the open session still works while the worker cannot accept
            assert ws.pull().msgtype == "PULL-DOC-REPLY"
        for conn in idle:
            conn.close()
        idle.clear()
        response = requests.get(server.url + "/hello/metadata", timeout=30)
        assert response.status_code == 200, response.status_code
        log = server.log_text()
        assert "open-files limit 100 is below worker_connections 1000" in log
        assert "raise the open-files limit" in log
        assert "Traceback" not in log, log[-3000:]
    finally:
        for conn in idle:
            conn.close()
        server.stop()
