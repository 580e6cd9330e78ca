"""Session tokens stay under 1 KiB whatever the page carries (the page's request facts are
kept on the server, see ``app/sessions/request_context.py``).

A token travels in the websocket's ``Sec-WebSocket-Protocol`` header, and nginx answers 400
beyond 8 KiB per header line by default. With the documented nginx config, which no longer
raises its header buffers, a tab with a 7 KiB cookie jar opens its websocket in chromium.
A session rebuilt on another host sees the page's request (from Redis); without a shared
store it is rebuilt from the websocket's own request, with a warning; a token naming another
session's facts is refused.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest
import requests
from bokeh.util.token import generate_jwt_token, generate_session_id
from websocket import WebSocketBadStatusException

from bokeh_flask.app.sessions.tokens import CONTEXT_KEY, decode_token
from tests.support.browser import assert_no_console_errors, model_value, wait_for_model
from tests.support.nginx import SITE_CONFIG, error_log, start_nginx
from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, model_by_name, model_changed

APP = APPS / "request_facts_app.py"
MAX_TOKEN = 1024
#: cookie jars of 0, 2, 4 and 7 KiB: 7 KiB is about the largest nginx's default 8 KiB
#: header line lets through on the page request itself
JARS = (0, 2, 4, 7)


def _jar(kib: int) -> dict[str, str]:
    """``kib`` KiB of random cookies (random text does not compress) in 1 KiB cookies."""
    return {f"c{i}": secrets.token_urlsafe(760) for i in range(kib)}


def _digests(jar: dict[str, str]) -> dict[str, str]:
    return {name: hashlib.sha256(value.encode()).hexdigest()[:12] for name, value in sorted(jar.items())}


def _page(base_url: str, jar: dict[str, str], **params: str) -> str:
    response = requests.get(f"{base_url}/request_facts_app", params=params, cookies=jar,
                            headers={"X-Page": "from-the-page"}, timeout=10)
    assert response.status_code == 200, response.text[:500]
    return response.text.replace('\\"', '"').split('"token":"', 1)[1].split('"', 1)[0]


def _facts(ws: BokehWS) -> tuple[dict, dict]:
    doc = ws.pull().content["doc"]
    return json.loads(model_by_name(doc, "facts")["attributes"]["text"]), doc


def _round_trip(ws: BokehWS, doc: dict) -> None:
    box, echo = model_by_name(doc, "box")["id"], model_by_name(doc, "echo")["id"]
    ws.patch(model_changed(box, "value", "hi"))
    replies = ws.recv_until(lambda m: m.msgtype == "OK")
    changes = [e for m in replies if m.msgtype == "PATCH-DOC" for e in m.events]
    assert {"kind": "ModelChanged", "model": {"id": echo}, "attr": "text", "new": "echo hi"} in changes


@pytest.fixture(scope="module")
def two_hosts(redis_url, tmp_path_factory):
    """Two servers with their own state directories (as on two machines), sharing one
    secret and one Redis."""
    servers = []
    try:
        for name in ("a", "b"):
            state = tmp_path_factory.mktemp(f"host-{name}")
            state.chmod(0o700)
            servers.append(launch("cli", apps=[APP], wait_path="/request_facts_app", args=[
                "--state-dir", str(state), "--redis-url", redis_url, "--workers", "2"],
                env={"BOKEH_SECRET_KEY": "k" * 44, "BOKEH_SIGN_SESSIONS": "yes"}))
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_tokens_stay_under_1_kib_whatever_the_cookie_jar(two_hosts):
    host, _ = two_hosts
    sizes = {kib: len(_page(host.url, _jar(kib), who="ann")) for kib in JARS}
    assert all(size < MAX_TOKEN for size in sizes.values()), sizes


def test_a_rebuild_on_another_host_sees_the_page_request(two_hosts):
    """The page on host a, its websocket on host b (whose state directory never saw it):
    the app on b sees the page's cookies, header and arguments, not the websocket's."""
    a, b = two_hosts
    jar = _jar(7)
    token = _page(a.url, jar, who="ann")
    with BokehWS(f"{b.ws_url}/request_facts_app/ws", token) as ws:
        facts, doc = _facts(ws)
        assert facts["cookies"] == _digests(jar) and facts["arguments"] == {"who": ["ann"]}
        assert facts["headers"]["X-Page"] == "from-the-page"
        _round_trip(ws, doc)


def test_without_a_shared_store_a_rebuild_uses_the_websocket_request(tmp_path):
    """Two hosts without Redis: host b cannot read what host a kept. The tab is not blank:
    b builds the session from the websocket's own request and says so once."""
    servers = []
    try:
        for name in ("a", "b"):
            state = tmp_path / name
            state.mkdir(mode=0o700)
            servers.append(launch("cli", apps=[APP], wait_path="/request_facts_app",
                                  args=["--state-dir", str(state)], env={"BOKEH_SECRET_KEY": "k" * 44}))
        a, b = servers
        token = _page(a.url, {"page": "p"}, who="ann")
        with BokehWS(f"{b.ws_url}/request_facts_app/ws", token, cookie="ws=w") as ws:
            facts, doc = _facts(ws)
            assert facts["cookies"] == _digests({"ws": "w"}) and facts["arguments"] == {}
            assert "X-Page" not in facts["headers"] and facts["headers"]["Connection"] == "Upgrade"
            _round_trip(ws, doc)
        b.wait_for_log("the page's request facts are gone")
    finally:
        for server in servers:
            server.stop()


def test_a_token_naming_another_sessions_facts_is_refused(tmp_path):
    """Unsigned sessions (Bokeh's default): anyone can write a token. One that borrows the
    context reference of another session's token is refused before any session is built."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    server = launch("cli", apps=[APP], wait_path="/request_facts_app", args=["--state-dir", str(state)])
    try:
        token = _page(server.url, {"secret": "victim"})
        reference = decode_token(token)[1][CONTEXT_KEY]
        forged = generate_jwt_token(generate_session_id(), extra_payload={CONTEXT_KEY: reference})
        with pytest.raises(WebSocketBadStatusException) as refused:
            BokehWS(f"{server.ws_url}/request_facts_app/ws", forged)
        assert refused.value.status_code == 403
        server.wait_for_log("its request context belongs to another session")
    finally:
        server.stop()


def test_a_7_kib_cookie_jar_opens_its_websocket_through_nginx_defaults(two_hosts, tmp_path, page):
    """chromium, 7 KiB of cookies, nginx with the documented config and its default 8 KiB
    header buffers: the page renders, its websocket opens and a widget round-trips."""
    assert "large_client_header_buffers" not in SITE_CONFIG.read_text()
    proxy = start_nginx([f"127.0.0.1:{s.port}" for s in two_hosts], tmp_path)
    try:
        jar = _jar(7)
        page.context.add_cookies([{"name": k, "value": v, "url": proxy.url} for k, v in jar.items()])
        page.goto(f"{proxy.url}/request_facts_app?who=ann")
        wait_for_model(page, "facts", "v.includes('who')")
        assert json.loads(model_value(page, "facts"))["cookies"] == _digests(jar)
        box = page.locator("div.bk-TextInput input.bk-input")
        box.fill("hi")
        box.press("Enter")
        wait_for_model(page, "echo", "v === 'echo hi'")
        assert_no_console_errors(page)
        assert "too long header" not in error_log(proxy)
    finally:
        proxy.stop()


def test_the_readme_no_longer_asks_for_bigger_header_buffers():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "large_client_header_buffers" not in readme
