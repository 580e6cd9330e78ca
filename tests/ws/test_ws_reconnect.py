"""Reconnecting websockets (BokehJS >= 3.8 reconnects with the same token), and tokens that
outlive their expiry: a live session takes its tab back; nothing else does.

The browser side (a dropped socket bringing a tab back) is ``tests/browser/test_reconnect.py``;
here each refusal is checked from the attacker's side with raw handshakes.
"""
from __future__ import annotations

import base64
import json
import time

import pytest
import requests
import websocket
from bokeh.util.token import generate_secret_key

from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, model_by_name, page_token

KINDS = ["gunicorn", "flask"]
#: Tokens that expire in 3 s (2-3 s after the page: expiry counts from the whole second),
#: and sessions that stay for a while without connections.
SHORT_TOKENS = {"session_token_expiration": 3, "unused_session_lifetime": 60_000}


def payload(token: str) -> dict:
    head = token.split(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def wait_expired(token: str) -> None:
    """Wait until the token's expiry (whole seconds, UTC) has passed."""
    expiry = payload(token)["session_expiry"]
    while time.time() < expiry + 0.05:
        time.sleep(0.05)


def handshake_status(url: str, token: str) -> int:
    """The HTTP status a websocket handshake with ``token`` gets (101 when upgraded)."""
    try:
        ws = websocket.create_connection(url, subprotocols=["bokeh", token], timeout=10)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    ws.close()
    return 101


def env_with(settings: dict, **extra: str) -> dict:
    return {"BOKEH_FLASK_SETTINGS": json.dumps(settings), **extra}


@pytest.fixture(scope="module", params=KINDS)
def short_server(request):
    server = launch(request.param, apps=[APPS / "hello.py", APPS / "ws_stamp_app.py"],
                    env=env_with(SHORT_TOKENS))
    yield server
    server.stop()


def test_second_connection_with_the_same_token_joins_the_live_session(short_server):
    """What BokehJS does after a drop: the same token again, within its lifetime."""
    token = page_token(short_server.url, "hello")
    url = f"{short_server.ws_url}/hello/ws"
    with BokehWS(url, token) as first:
        doc = first.pull().content["doc"]
        first.request("PATCH-DOC", {"events": [{"kind": "ModelChanged", "attr": "text", "new": "before the drop",
                                                 "model": {"id": model_by_name(doc, "status")["id"]}}]})
    with BokehWS(url, token) as again:
        status = model_by_name(again.pull().content["doc"], "status")
        assert status["attributes"]["text"] == "before the drop"


def test_expired_token_reattaches_to_its_live_session(short_server):
    token = page_token(short_server.url, "hello")
    url = f"{short_server.ws_url}/hello/ws"
    with BokehWS(url, token) as first:
        doc = first.pull().content["doc"]
        status = model_by_name(doc, "status")["id"]
        first.request("PATCH-DOC", {"events": [{"kind": "ModelChanged", "attr": "text", "new": "kept",
                                                 "model": {"id": status}}]})
        wait_expired(token)
        # a second tab-like connection while the first is open, then the first drops
        with BokehWS(url, token) as second:
            assert model_by_name(second.pull().content["doc"], "status")["attributes"]["text"] == "kept"
    # no connection left: the session is still alive (unused lifetime 60 s)
    with BokehWS(url, token) as back:
        assert model_by_name(back.pull().content["doc"], "status")["attributes"]["text"] == "kept"


def test_expired_token_for_a_session_that_is_gone_is_refused(short_server):
    """A token whose session this process never held (a restart, another worker) may not
    build a new session once it has expired: 403 before the upgrade."""
    token = page_token(short_server.url, "hello")
    other = launch(short_server.kind, apps=[APPS / "hello.py"], env=env_with(SHORT_TOKENS))
    try:
        wait_expired(token)
        assert handshake_status(f"{other.ws_url}/hello/ws", token) == 403
        assert "token is expired" in other.log_text()
        # the same token while unexpired would have built it: only expiry refuses it
        fresh = page_token(short_server.url, "hello")
        assert handshake_status(f"{other.ws_url}/hello/ws", fresh) == 101
    finally:
        other.stop()


def test_expired_token_of_another_app_is_refused(short_server):
    """The session lives in app hello; the same token at another app's websocket names no
    live session there."""
    token = page_token(short_server.url, "hello")
    with BokehWS(f"{short_server.ws_url}/hello/ws", token):
        wait_expired(token)
        assert handshake_status(f"{short_server.ws_url}/ws_stamp_app/ws", token) == 403
        assert handshake_status(f"{short_server.ws_url}/hello/ws", token) == 101


def test_reattach_can_be_turned_off():
    server = launch("gunicorn", apps=[APPS / "hello.py"],
                    env=env_with(SHORT_TOKENS, BOKEH_REATTACH_EXPIRED_TOKENS="no"))
    try:
        token = page_token(server.url, "hello")
        url = f"{server.ws_url}/hello/ws"
        with BokehWS(url, token):
            wait_expired(token)
            assert handshake_status(url, token) == 403
    finally:
        server.stop()


def test_expired_forged_tokens_never_reattach():
    """Signed sessions: a token whose signature is wrong, or that names a live session id
    with a re-signed payload it cannot sign, is refused whatever its expiry."""
    key = generate_secret_key()
    server = launch("gunicorn", apps=[APPS / "hello.py"],
                    env=env_with(SHORT_TOKENS, BOKEH_SECRET_KEY=key, BOKEH_SIGN_SESSIONS="yes"))
    try:
        token = page_token(server.url, "hello")
        url = f"{server.ws_url}/hello/ws"
        head, _, signature = token.partition(".")
        with BokehWS(url, token):
            wait_expired(token)
            assert handshake_status(url, token) == 101  # the genuine one re-attaches
            forged = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
            assert handshake_status(url, forged) == 403
            # a new payload for the same (signed) session id, signed with a guessed key
            from bokeh.util.token import generate_jwt_token
            session_id = payload(token)["session_id"]
            guessed = generate_jwt_token(session_id, secret_key=b"not the key", signed=True, expiration=-10)
            assert handshake_status(url, guessed) == 403
    finally:
        server.stop()


def test_page_and_token_of_the_same_session_survive_many_reconnects(short_server):
    """Five reconnects in a row (BokehJS's attempts) each meet the same session."""
    token = page_token(short_server.url, "hello")
    url = f"{short_server.ws_url}/hello/ws"
    texts = []
    for attempt in range(5):
        with BokehWS(url, token) as ws:
            doc = ws.pull().content["doc"]
            status = model_by_name(doc, "status")["id"]
            texts.append(model_by_name(doc, "status")["attributes"].get("text"))
            ws.request("PATCH-DOC", {"events": [{"kind": "ModelChanged", "attr": "text", "new": f"n{attempt}",
                                                  "model": {"id": status}}]})
    assert texts == ["hi", "n0", "n1", "n2", "n3"]
    assert requests.get(short_server.url + "/hello", timeout=10).status_code == 200
