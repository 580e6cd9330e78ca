"""A websocket that reaches a process which never saw the page still gets its session.

Two independent bokeh-flask servers (standing in for two gunicorn workers or two hosts
behind a round-robin balancer) share a secret key. Pages come from one, websockets go to
the other: the token alone must rebuild the session there, with the page request's
arguments, and the session must work both ways.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.support.servers import launch
from tests.support.wire import BokehWS, model_by_name, model_changed

APP = Path(__file__).resolve().parent.parent / "apps" / "scaleout_pid"
SECRET = "k" * 44


@pytest.fixture(scope="module", params=["unsigned", "signed"])
def pair(request):
    env = {"BOKEH_SECRET_KEY": SECRET, "BOKEH_SIGN_SESSIONS": "yes" if request.param == "signed" else "no"}
    first = launch("gunicorn", apps=[APP], env=env)
    second = launch("gunicorn", apps=[APP], env=env)
    yield first, second
    first.stop()
    second.stop()


def _page(server, **params) -> tuple[str, list[str]]:
    html = requests.get(f"{server.url}/scaleout_pid", params=params, timeout=10).text
    token = re.search(r'"token":\s*"([^"]+)"', html.replace('\\"', '"')).group(1)
    return token, re.findall(r'data-root-id="([^"]+)"', html)


def _text(doc: dict, name: str) -> str:
    return model_by_name(doc, name)["attributes"]["text"]


def test_websocket_on_a_process_that_never_saw_the_page(pair):
    first, second = pair
    for n in range(10):
        token, root_ids = _page(first, user=f"u{n}")
        with BokehWS(f"{second.ws_url}/scaleout_pid/ws", token) as ws:
            doc = ws.pull().content["doc"]
            # the rebuilt document is the one the page shows: same root ids, not just shape
            assert [root["id"] for root in doc["roots"]] == root_ids
            page_pid, session_pid = re.fullmatch(r"page_pid=(\d+) session_pid=(\d+)", _text(doc, "where")).groups()
            assert page_pid != session_pid, "the session must have been rebuilt on the second server"
            assert f"user=u{n}" in _text(doc, "args")
            box = model_by_name(doc, "box")["id"]
            echo = model_by_name(doc, "echo")["id"]
            ws.patch(model_changed(box, "value", f"v{n}"))
            replies = ws.recv_until(lambda m: m.msgtype == "OK")
            changes = [e for m in replies if m.msgtype == "PATCH-DOC" for e in m.events]
            assert {"kind": "ModelChanged", "model": {"id": echo}, "attr": "text", "new": f"echo v{n}"} in changes


@pytest.mark.parametrize("pair", ["signed"], indirect=True)
def test_forged_token_is_refused_by_the_other_process_when_signed(pair):
    first, second = pair
    token, _ = _page(first)
    payload, _, signature = token.partition(".")
    assert signature, "signed mode must sign tokens"
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    response = requests.get(f"{second.url}/scaleout_pid/ws", timeout=10, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": f"bokeh, {forged}"})
    assert response.status_code == 403
