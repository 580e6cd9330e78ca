"""Regression tests for the refusals of issue 3 that tests/http and tests/ws do not cover.

Already covered there (not repeated): wrong-key token, stripped signature and unsigned id
on the websocket (tests/ws/test_ws_handshake.py); forged/unsigned/truncated ids and forged
``bokeh-token`` on the page, external-signed mode, ``BOKEH_SIGN_SESSIONS=no`` on the page
of a gunicorn server (tests/http/test_http_signed.py); a foreign origin and
``--allow-websocket-origin example.com:80`` (tests/ws, tests/cli).

Here:
* signed mode, websocket: validly signed but expired tokens, tampered payloads, truncated,
  empty, spliced, re-encoded or extended signatures, right-key tokens around wrong-key ids,
  signed payloads without a usable session id or expiry: all 403 before the upgrade;
* ``--allow-websocket-origin dashboard.corp`` end to end (``bokeh-flask serve``): exact
  hostname labels, lookalikes refused with 403 and a log line naming origin and flag;
* a token carrying 20 KB of cookies passes gunicorn on the websocket, also when the
  session must be rebuilt from it;
* no token, secret key or session-id signature in the log at debug level, for each way of
  running, after normal and refused requests;
* ``BOKEH_SIGN_SESSIONS`` = no/false/0/off (with a secret key set) means unsigned, on the
  page and on the websocket, for each way of running.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

import pytest
import requests
from bokeh.util.token import generate_jwt_token, generate_secret_key, generate_session_id, get_session_id

from tests.support import wire
from tests.support.hardening import HELLO, close_frame, raw_handshake, settings_env, touch, wait_for_memory
from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, page_token

KEY = generate_secret_key()
OTHER_KEY = generate_secret_key()
COOKIES_APP = APPS / "hard_cookies.py"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(text: str, key: str = KEY) -> str:
    return b64(hmac.new(key.encode(), text.encode(), hashlib.sha256).digest())


def signed_id(key: str = KEY) -> str:
    return generate_session_id(secret_key=key.encode(), signed=True)


def signed_token(session_id: str | None = None, key: str = KEY, expiration: int = 300, **extra) -> str:
    return generate_jwt_token(session_id or signed_id(), secret_key=key.encode(), signed=True,
                              expiration=expiration, extra_payload=extra or None)


def signed_payload(payload: dict) -> str:
    """A token whose (arbitrary) payload carries a valid signature of the server's key."""
    base = b64(json.dumps(payload).encode())
    return f"{base}.{sign(base)}"


def handshake(server, token: str, path: str = "/hello/ws", origin: str | None = None) -> tuple[int, str]:
    status, _, body, sock = raw_handshake(server.port, path, f"bokeh, {token}", origin=origin)
    try:
        if status == 101:
            sock.sendall(close_frame())
        return status, body.decode("utf-8", "replace")
    finally:
        sock.close()


def fetch(url: str, **kwargs) -> requests.Response:
    """GET and close the connection (an idle keep-alive connection delays gunicorn's stop)."""
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("allow_redirects", False)
    kwargs["headers"] = {"Connection": "close", **kwargs.get("headers", {})}
    return requests.get(url, **kwargs)


@pytest.fixture(scope="module")
def signed():
    """Signed gunicorn server at debug level, short lifetimes, hello + hard_cookies."""
    env = {**settings_env(), "BOKEH_SIGN_SESSIONS": "yes", "BOKEH_SECRET_KEY": KEY,
           "BOKEH_PY_LOG_LEVEL": "debug"}
    s = launch("gunicorn", apps=[HELLO, COOKIES_APP], env=env)
    touch(s)
    yield s
    s.stop()


# -- signed-mode token refusals on the websocket ------------------------------------------------

def _tampered_expiry() -> str:
    token = signed_token()
    base, sig = token.split(".", 1)
    payload = json.loads(base64.urlsafe_b64decode(base + "=" * (-len(base) % 4)))
    payload["session_expiry"] += 3600
    return b64(json.dumps(payload).encode()) + "." + sig


def _tampered_session_id() -> str:
    token = signed_token()
    base, sig = token.split(".", 1)
    payload = json.loads(base64.urlsafe_b64decode(base + "=" * (-len(base) % 4)))
    payload["session_id"] = signed_id()  # another validly signed id, old signature
    return b64(json.dumps(payload).encode()) + "." + sig


def _spliced() -> str:
    a, b = signed_token(), signed_token()
    return a.split(".", 1)[0] + "." + b.split(".", 1)[1]


def _flip_case(text: str) -> str:
    return "".join(c.lower() if c.isupper() else c.upper() for c in text)


REFUSED_TOKENS = {
    "expired, validly signed": lambda: signed_token(expiration=-1),
    "expired long ago, validly signed": lambda: signed_token(expiration=-10**6),
    "expiry extended, old signature": _tampered_expiry,
    "session id swapped, old signature": _tampered_session_id,
    "signature of another token": _spliced,
    "signature truncated by one": lambda: signed_token()[:-1],
    "signature truncated to half": lambda: (lambda t: t[: t.index(".") + 22])(signed_token()),
    "empty signature": lambda: signed_token().split(".", 1)[0] + ".",
    "signature with padding": lambda: signed_token() + "=",
    "signature in standard base64": lambda: (lambda t: t.split(".")[0] + "." + base64.b64encode(
        base64.urlsafe_b64decode(t.split(".")[1] + "=")).decode())(signed_token(session_id=signed_id())),
    "signature case-flipped": lambda: (lambda t: t.split(".")[0] + "." + _flip_case(t.split(".")[1]))(signed_token()),
    "extra segment": lambda: signed_token() + ".x",
    "signature doubled": lambda: (lambda t: t + t[t.index("."):])(signed_token()),
    "non-ASCII signature": lambda: signed_token()[:-1] + "\u00e9",
    "right key, id signed with another key": lambda: signed_payload(
        {"session_id": signed_id(OTHER_KEY), "session_expiry": int(time.time()) + 300}),
    "right key, id without signature": lambda: signed_payload(
        {"session_id": generate_session_id(secret_key=None, signed=False), "session_expiry": int(time.time()) + 300}),
    "right key, no expiry": lambda: signed_payload({"session_id": signed_id()}),
    "right key, expiry as text": lambda: signed_payload(
        {"session_id": signed_id(), "session_expiry": str(int(time.time()) + 300)}),
    "right key, empty session id": lambda: signed_payload({"session_id": "", "session_expiry": int(time.time()) + 300}),
    "right key, payload is a list": lambda: (lambda base: f"{base}.{sign(base)}")(b64(b'["session_id"]')),
    "right key, payload not JSON": lambda: (lambda base: f"{base}.{sign(base)}")(b64(b"not json")),
}


@pytest.mark.parametrize("name", list(REFUSED_TOKENS))
def test_signed_mode_refuses_bad_tokens_before_upgrade(signed, name):
    token = REFUSED_TOKENS[name]()
    before = signed.log_text().count("Refusing websocket")
    status, body = handshake(signed, token)
    assert status == 403, (name, status, body[:300])
    assert "Traceback" not in body and token not in body, body[:300]
    signed.wait_for_log("Refusing websocket")
    deadline = time.monotonic() + 5
    while signed.log_text().count("Refusing websocket") <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert signed.log_text().count("Refusing websocket") > before, "the refusal was not logged"


def test_signed_mode_control_valid_tokens_upgrade(signed):
    """The same server accepts a minted and a page token (the 403s above are about the tokens)."""
    assert handshake(signed, signed_token())[0] == 101
    assert handshake(signed, page_token(signed.url))[0] == 101
    assert handshake(signed, signed_token(expiration=5))[0] == 101


# -- origin allowlist: exact labels, end to end -------------------------------------------------------

@pytest.fixture(scope="module")
def dashboard():
    s = launch("cli", apps=[HELLO], args=["--allow-websocket-origin", "dashboard.corp"])
    yield s
    s.stop()


@pytest.mark.parametrize("origin", [
    "http://dashboard.corp",
    "http://dashboard.corp:80",
    "https://dashboard.corp",
    "http://DASHBOARD.Corp",
])
def test_origin_exact_label_allowed(dashboard, origin):
    status, body = handshake(dashboard, page_token(dashboard.url), origin=origin)
    assert status == 101, (origin, status, body[:300])


@pytest.mark.parametrize("origin", [
    "http://dashboard.corp.attacker.com",
    "http://evil-dashboard.corp",
    "http://sub.dashboard.corp",
    "http://dashboard.corporate",
    "http://xdashboard.corp",
    "http://dashboard-corp",
    "http://dashboard.corp:8080",
    "https://dashboard.corp:8443",
    "http://dashboard.corp@attacker.com",
    "http://attacker.com/dashboard.corp",
    "http://attacker.com?dashboard.corp",
    "http://attacker.com#dashboard.corp",
    "http://localhost",
])
def test_origin_lookalikes_refused_and_logged(dashboard, origin):
    status, body = handshake(dashboard, page_token(dashboard.url), origin=origin)
    assert status == 403, (origin, status, body[:300])
    assert "Cross origin websockets not allowed" in body, body
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = [line for line in dashboard.log_text().splitlines() if repr(origin) in line or origin in line]
        if lines:
            break
        time.sleep(0.05)
    assert lines, f"no log line names {origin}:\n{dashboard.log_text()[-2000:]}"
    assert any("--allow-websocket-origin" in line for line in lines), lines


def test_origin_allowlist_default_localhost_is_replaced(dashboard):
    port = dashboard.port
    assert handshake(dashboard, page_token(dashboard.url), origin=f"http://localhost:{port}")[0] == 403


# -- big tokens through gunicorn ---------------------------------------------------------------------

def _summary(ws: BokehWS) -> str:
    return wire.model_by_name(ws.pull().content["doc"], "summary")["attributes"]["text"]


def test_20kb_of_cookies_reach_the_session_through_a_small_token(signed):
    """The page's cookies are kept on the server: the token stays small, and a session
    rebuilt after the page's has expired still sees all of them."""
    cookies = {f"c{i:02d}": secrets.token_urlsafe(750)[:1000] for i in range(20)}
    total = sum(len(v) for v in cookies.values())
    assert total >= 20_000
    response = fetch(signed.url + "/hard_cookies/", cookies=cookies)
    assert response.status_code == 200
    token = wire._TOKEN_RE.search(response.text).group(1)
    assert len(token) < 1024, len(token)
    url = f"{signed.ws_url}/hard_cookies/ws"
    with BokehWS(url, token) as ws:  # the page's session, still alive
        count, length, _ = _summary(ws).split()
    assert (int(count), int(length)) == (20, total)
    # once that session has expired, the websocket rebuilds it from the token and the kept facts
    wait_for_memory(signed, lambda m: m.sessions == 0 and m.connections == 0, timeout=30,
                    what="the page's session expired")
    with BokehWS(url, token) as ws:
        count, length, _ = _summary(ws).split()
    assert (int(count), int(length)) == (20, total)


# -- no secrets in the log at debug level ---------------------------------------------------------------

def _signature_parts(token: str) -> list[str]:
    parts = token.split(".")
    out = [p for p in parts if len(p) >= 20]
    try:
        sid = get_session_id(token)
        if "." in sid:
            out.append(sid.split(".", 1)[1])
    except Exception:
        pass
    return out


def _traffic(server) -> tuple[list[str], list[str]]:
    """Normal and refused requests; (tokens seen or sent, session ids seen or sent)."""
    tokens: list[str] = []
    ids: list[str] = []
    def get(path: str, **kw):
        return fetch(server.url + path, **kw)

    # normal: pages, a websocket with PULL and PATCHes (one fails), autoload, ids and tokens in URLs
    for _ in range(3):
        tokens.append(page_token(server.url))
    with BokehWS(f"{server.ws_url}/hello/ws", tokens[0]) as ws:
        doc = ws.pull().content["doc"]
        ws.patch(wire.model_changed(wire.model_by_name(doc, "ti")["id"], "value", "changed"))
        ws.recv_until(lambda m: m.msgtype == "OK")
        ws.patch(wire.model_changed("no-such-model", "value", 1))
        ws.recv_until(lambda m: m.msgtype == "ERROR")
    good_id = signed_id()
    ids.append(good_id)
    r = get(f"/hello/?bokeh-session-id={good_id}")
    assert r.status_code == 200, r.text[:200]
    tokens += wire._TOKEN_RE.findall(r.text)
    auto_id = signed_id()
    ids.append(auto_id)
    r = get(f"/hello/autoload.js?bokeh-autoload-element=el&bokeh-session-id={auto_id}")
    assert r.status_code == 200, r.text[:200]
    tokens += wire._TOKEN_RE.findall(r.text)
    minted = signed_token()
    tokens.append(minted)
    assert get(f"/hello/?bokeh-token={minted}").status_code == 200
    r = get("/hello/", headers={"Bokeh-Session-Id": signed_id()})
    assert r.status_code == 200

    # refused: forged ids and tokens on the page, bad tokens and origins on the websocket
    forged_id = signed_id(OTHER_KEY)
    ids.append(forged_id)
    assert get(f"/hello/?bokeh-session-id={forged_id}").status_code == 403
    header_id = signed_id(OTHER_KEY)
    ids.append(header_id)
    assert get("/hello/", headers={"Bokeh-Session-Id": header_id}).status_code == 403
    forged = signed_token(key=OTHER_KEY)
    tokens.append(forged)
    assert get(f"/hello/?bokeh-token={forged}").status_code == 403
    for make in ("expired, validly signed", "expiry extended, old signature", "signature of another token",
                 "right key, id signed with another key"):
        bad = REFUSED_TOKENS[make]()
        tokens.append(bad)
        assert handshake(server, bad)[0] == 403
    assert handshake(server, tokens[1], origin="http://evil.example.com")[0] == 403
    # a protocol error on an open websocket
    ws = BokehWS(f"{server.ws_url}/hello/ws", tokens[2])
    ws.send_frames(["not json", "{}", "{}"])
    assert ws.wait_closed()[0] == 1002
    ws.close()
    return tokens, ids


def _secrets_in_log(log: str, tokens: list[str], ids: list[str]) -> list[str]:
    found = []
    needles = {"secret key": KEY}
    for i, token in enumerate(tokens):
        needles[f"token {i}"] = token
        for j, part in enumerate(_signature_parts(token)):
            needles[f"token {i} part {j}"] = part
    for i, session_id in enumerate(ids):
        needles[f"session id {i} signature"] = session_id.split(".", 1)[1]
    for name, needle in needles.items():
        if needle and needle in log:
            line = next(line for line in log.splitlines() if needle in line)
            found.append(f"{name}: {line.replace(needle, '<' + name.upper() + '>')[:300]}")
    return found


@pytest.mark.parametrize("kind", ["gunicorn", "cli", "flask"])
def test_no_tokens_key_or_signatures_in_debug_log(kind, signed):
    if kind == "gunicorn":
        server = signed  # BOKEH_PY_LOG_LEVEL=debug, signed
        own = False
    else:
        env = {**settings_env(), "BOKEH_SECRET_KEY": KEY}
        args = []
        if kind == "cli":
            args = ["--log-level", "debug", "--session-ids", "signed"]
        else:
            env.update({"BOKEH_PY_LOG_LEVEL": "debug", "BOKEH_SIGN_SESSIONS": "yes"})
        server = launch(kind, apps=[HELLO], env=env, args=args)
        own = True
    try:
        tokens, ids = _traffic(server)
        # the periodic stats line is logged at debug level: once it is there, the log is
        # known to be at debug level before it is searched (whatever its line format)
        server.wait_for_log(" connections, ", timeout=60)
        log = server.log_text()
        found = _secrets_in_log(log, tokens, ids)
        assert not found, f"{kind}: secrets in the log:\n" + "\n".join(found)
    finally:
        if own:
            server.stop()


# -- BOKEH_SIGN_SESSIONS=no means unsigned --------------------------------------------------------------

@pytest.mark.parametrize("kind,value", [("gunicorn", "no"), ("cli", "false"), ("flask", "0"), ("gunicorn", "off")])
def test_sign_sessions_falsy_means_unsigned_on_page_and_websocket(kind, value):
    server = launch(kind, apps=[HELLO], env={"BOKEH_SIGN_SESSIONS": value, "BOKEH_SECRET_KEY": KEY})
    try:
        token = page_token(server.url)
        assert "." not in token, "an unsigned token has no signature segment"
        sid = get_session_id(token)
        assert len(sid) == 44 and "." not in sid, sid
        # any id is accepted on the page, unsigned tokens on the websocket
        r = fetch(server.url + "/hello/?bokeh-session-id=plain-id")
        assert r.status_code == 200, r.text[:200]
        assert get_session_id(wire._TOKEN_RE.search(r.text).group(1)) == "plain-id"
        minted = generate_jwt_token(generate_session_id(secret_key=None, signed=False),
                                    secret_key=None, signed=False)
        for t in (token, minted):
            with BokehWS(f"{server.ws_url}/hello/ws", t) as ws:
                assert ws.pull().msgtype == "PULL-DOC-REPLY"
    finally:
        server.stop()
