"""``--use-xheaders`` / ``BOKEH_USE_XHEADERS``: behind a proxy, the session sees the browser's
address and scheme (as Tornado's ``xheaders``), and without it the proxy's own."""
from __future__ import annotations

import re

import pytest
import requests

from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, model_by_name

FORWARDED = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7", "X-Forwarded-Proto": "https"}


def _seen(server, headers: dict[str, str]) -> str:
    html = requests.get(f"{server.url}/request_echo", headers=headers, timeout=10).text
    token = re.search(r'"token":\s*"([^"]+)"', html.replace('\\"', '"')).group(1)
    with BokehWS(f"{server.ws_url}/request_echo/ws", token) as ws:
        return model_by_name(ws.pull().content["doc"], "request")["attributes"]["text"]


@pytest.mark.parametrize("kind,env,args", [
    ("gunicorn", {"BOKEH_USE_XHEADERS": "yes"}, []),
    ("cli", {}, ["--use-xheaders"]),
])
def test_forwarded_address_and_scheme_are_trusted_when_asked(kind, env, args):
    server = launch(kind, apps=[APPS / "request_echo.py"], env=env, args=args)
    try:
        # the nearest proxy's entry (the last) is the client, as Tornado's xheaders
        assert _seen(server, FORWARDED) == "remote_ip=203.0.113.7 protocol=https"
        assert _seen(server, {}) == "remote_ip=127.0.0.1 protocol=http"
    finally:
        server.stop()


def test_forwarded_address_is_ignored_by_default():
    """(The scheme follows gunicorn's own ``forwarded_allow_ips``, which trusts a proxy on
    127.0.0.1 by default, so only the address is checked from loopback.)"""
    server = launch("gunicorn", apps=[APPS / "request_echo.py"])
    try:
        assert _seen(server, FORWARDED).startswith("remote_ip=127.0.0.1 ")
    finally:
        server.stop()
