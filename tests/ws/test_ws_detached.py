"""Under gunicorn an upgraded websocket leaves the request that opened it (a greenlet of its
own on a duplicate of the socket), so open websockets do not hold gunicorn's per-worker
connection slots: with ``--worker-connections 3`` a worker still serves many tabs."""
from __future__ import annotations

import requests

from tests.support import servers
from tests.support.wire import BokehWS, page_token

TABS = 8


def test_open_websockets_do_not_hold_gunicorn_connection_slots():
    server = servers.launch("gunicorn", apps=[servers.APPS / "hello.py"], args=["--worker-connections", "3"])
    opened: list[BokehWS] = []
    try:
        for _ in range(TABS):
            ws = BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url, "hello"))
            opened.append(ws)
            assert ws.pull().msgtype == "PULL-DOC-REPLY"
        # every slot would be taken if the websockets still held their requests
        assert requests.get(f"{server.url}/hello", timeout=10).status_code == 200
        for ws in opened:
            assert ws.pull().msgtype == "PULL-DOC-REPLY"
        assert "Traceback" not in server.log_text(), server.log_text()[-3000:]
    finally:
        for ws in opened:
            ws.close()
        server.stop()
