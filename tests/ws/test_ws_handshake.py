"""The websocket handshake (contract 4): subprotocol, origin and token checks.

bokeh-flask refuses bad handshakes with a plain HTTP answer *before* the upgrade
(400 bad/missing subprotocol, 403 foreign origin or bad/expired token) where upstream
answers 101 and then drops the socket.
"""
from __future__ import annotations

import base64
import json

import pytest
import requests
import websocket
from bokeh.util.token import generate_jwt_token, generate_session_id

from tests.support.wire import NODELAY, TIMEOUT, BokehWS, page_token


def handshake(url: str, subprotocols: list[str] | None, **options) -> tuple[int, dict, str]:
    """Open a websocket; (status, response headers, body or subprotocol). 101 = upgraded."""
    try:
        ws = websocket.create_connection(url, subprotocols=subprotocols, timeout=TIMEOUT,
                                         sockopt=NODELAY, **options)
    except websocket.WebSocketBadStatusException as exc:
        body = exc.resp_body.decode("utf-8", "replace") if exc.resp_body else ""
        return exc.status_code, exc.resp_headers or {}, body
    try:
        return ws.status, ws.getheaders(), ws.getsubprotocol()
    finally:
        ws.close()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


# -- subprotocol ------------------------------------------------------------------------------

def test_subprotocol_bokeh_is_echoed_and_ack_follows(server, connect):
    ws = connect(server)
    assert ws.ws.getsubprotocol() == "bokeh"
    assert ws.ws.getheaders()["sec-websocket-protocol"] == "bokeh"
    assert ws.ack.msgtype == "ACK"


def test_permessage_deflate_is_not_negotiated(server):
    token = page_token(server.url)
    status, headers, _ = handshake(
        f"{server.ws_url}/hello/ws", ["bokeh", token],
        header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
    assert status == 101
    assert "sec-websocket-extensions" not in headers


@pytest.mark.parametrize("offered", [
    pytest.param(None, id="missing"),
    pytest.param(["bokeh"], id="one-value"),
    pytest.param(["bokeh", "TOKEN", "extra"], id="three-values"),
    pytest.param(["notbokeh", "TOKEN"], id="first-not-bokeh"),
    pytest.param(["TOKEN", "bokeh"], id="swapped"),
])
def test_bad_subprotocol_refused_with_400_before_upgrade(server, offered):
    token = page_token(server.url)
    if offered is not None:
        offered = [token if p == "TOKEN" else p for p in offered]
    status, _, body = handshake(f"{server.ws_url}/hello/ws", offered)
    assert status == 400, body
    # the same request with a well-formed offer upgrades (the 400 is about the subprotocol)
    assert handshake(f"{server.ws_url}/hello/ws", ["bokeh", token])[0] == 101


def upgrade_headers(token: str, version: str = "13") -> dict[str, str]:
    """A browser's websocket handshake headers, for sending with ``requests``."""
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": version,
            "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
            "Sec-WebSocket-Protocol": f"bokeh, {token}"}


def test_plain_get_of_ws_route_is_400(server):
    response = requests.get(f"{server.url}/hello/ws", timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.text == '400: Can "Upgrade" only to "WebSocket".\n'


def test_websocket_handshake_to_a_page_path_is_400_with_a_clear_reason(server):
    response = requests.get(f"{server.url}/hello", timeout=TIMEOUT,
                            headers=upgrade_headers(page_token(server.url)))
    assert response.status_code == 400
    assert "go to <app>/ws" in response.text and "Traceback" not in response.text


def test_wrong_websocket_version_is_426(server):
    response = requests.get(f"{server.url}/hello/ws", timeout=TIMEOUT,
                            headers=upgrade_headers(page_token(server.url), version="8"))
    assert response.status_code == 426
    assert response.headers.get("Sec-WebSocket-Version") == "13"


# -- origin ------------------------------------------------------------------------------------

def test_foreign_origin_refused_with_403_and_logged(server):
    token = page_token(server.url)
    status, _, body = handshake(f"{server.ws_url}/hello/ws", ["bokeh", token],
                                origin="http://evil.example.com:8080")
    assert status == 403, body
    assert "Cross origin websockets not allowed" in body
    server.wait_for_log("evil.example.com:8080")
    line = next(text for text in server.log_text().splitlines() if "evil.example.com:8080" in text)
    assert "--allow-websocket-origin" in line, line


def test_origin_localhost_other_port_refused(server):
    token = page_token(server.url)
    status, _, body = handshake(f"{server.ws_url}/hello/ws", ["bokeh", token],
                                origin=f"http://localhost:{server.port + 1}")
    assert status == 403, body


def test_no_origin_allowed(server, connect):
    ws = connect(server, suppress_origin=True)
    assert ws.ack.msgtype == "ACK"
    assert ws.pull().msgtype == "PULL-DOC-REPLY"


def test_origin_equal_to_host_allowed(server, connect):
    # Host is 127.0.0.1:<port>, which is not in the default allowlist (localhost:<port>)
    ws = connect(server, origin=f"http://127.0.0.1:{server.port}")
    assert ws.ack.msgtype == "ACK"


def test_origin_localhost_port_allowed_by_default(server, connect):
    ws = connect(server, origin=f"http://localhost:{server.port}")
    assert ws.ack.msgtype == "ACK"


# -- tokens ------------------------------------------------------------------------------------

def test_expired_token_refused_with_403(server):
    token = generate_jwt_token(generate_session_id(secret_key=None, signed=False),
                               secret_key=None, signed=False, expiration=-1)
    status, _, body = handshake(f"{server.ws_url}/hello/ws", ["bokeh", token])
    assert status == 403, body


def test_minted_unsigned_token_accepted(server):
    token = generate_jwt_token(generate_session_id(secret_key=None, signed=False),
                               secret_key=None, signed=False)
    with BokehWS(f"{server.ws_url}/hello/ws", token) as ws:
        assert ws.ack.msgtype == "ACK"


def test_token_from_another_app_opens_this_app(server):
    """Tokens are not bound to an application (contract 3.3)."""
    token = page_token(server.url, "ws_stamp_app")
    with BokehWS(f"{server.ws_url}/hello/ws", token) as ws:
        assert ws.pull().content["doc"]["title"] == "Hello"


@pytest.mark.parametrize("token", [
    pytest.param("not-a-token", id="garbage"),
    pytest.param(_b64("this is not json"), id="payload-not-json"),
    pytest.param(_b64(json.dumps({"session_expiry": 4102444800})), id="no-session-id"),
    pytest.param(_b64(json.dumps(["a", "list"])), id="payload-not-object"),
    pytest.param("%%%%", id="not-base64"),
])
def test_undecodable_token_refused_with_403(server, token):
    status, _, body = handshake(f"{server.ws_url}/hello/ws", ["bokeh", token])
    assert status == 403, body
    assert "Traceback" not in body


def _signed_key(signed_server) -> str:
    return signed_server.env["BOKEH_SECRET_KEY"]


def test_signed_page_token_accepted(signed_server, connect):
    ws = connect(signed_server)
    assert ws.pull().msgtype == "PULL-DOC-REPLY"


def test_token_with_bad_signature_refused_with_403(signed_server):
    key = _signed_key(signed_server)
    session_id = generate_session_id(secret_key=key, signed=True)
    good = generate_jwt_token(session_id, secret_key=key, signed=True)
    bad = generate_jwt_token(session_id, secret_key="another" + key, signed=True)
    url = f"{signed_server.ws_url}/hello/ws"
    assert handshake(url, ["bokeh", bad])[0] == 403
    assert handshake(url, ["bokeh", good.split(".", 1)[0]])[0] == 403  # signature stripped
    assert handshake(url, ["bokeh", good])[0] == 101


def test_token_with_unsigned_session_id_refused_under_signing(signed_server):
    key = _signed_key(signed_server)
    token = generate_jwt_token("unsigned-session-id", secret_key=key, signed=True)
    assert handshake(f"{signed_server.ws_url}/hello/ws", ["bokeh", token])[0] == 403
