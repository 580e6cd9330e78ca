"""Property-based fuzzing of request arguments, session ids and tokens over HTTP and on
the websocket handshake, against a signed and an unsigned gunicorn server.

Requests are written byte for byte on raw sockets (no client normalisation): random
query strings (``bokeh-session-id``, ``bokeh-token``, ``bokeh-autoload-element``, other
``bokeh-*`` keys, arbitrary keys; percent-encoded, ``+``-encoded, raw, with broken
escapes, unicode), random ``Bokeh-Session-Id`` headers, and websocket handshakes with random
``Sec-WebSocket-Protocol`` values carrying valid, forged, wrong-key, tampered, truncated,
expired, undecodable or non-ASCII tokens.

Every answer must have an expected status (never 500) and no traceback in its body. Where
the request is unambiguous the decision itself is checked against a reference built from
``bokeh.util.token`` (contract 3.3, 3.6, 4.2, 4.4): in signed mode a page is only served
for a validly signed id or token, and every token the server hands out verifies with the
key; a handshake upgrades exactly when the subprotocol is ``bokeh, <token>`` and the token
is valid and unexpired.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import unicodedata
import zlib
from collections import Counter
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from bokeh.util.token import (
    check_session_id_signature,
    check_token_signature,
    generate_jwt_token,
    generate_secret_key,
    generate_session_id,
    get_session_id,
    get_token_payload,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import wire
from tests.support.hardening import (
    HELLO,
    FrameReader,
    close_frame,
    connect,
    fresh_session_works,
    handshake_request,
    read_http_head,
    settings_env,
    slow_size,
    touch,
    tracebacks,
)
from tests.support.servers import launch

CI_EXAMPLES = 500  # per test and mode: 3 tests x 2 modes x 500 = 3000 inputs
HTTP_STATUSES = {200, 302, 400, 403, 404, 405}
WS_STATUSES = {101, 400, 403, 426}
KEY = generate_secret_key()
OTHER_KEY = generate_secret_key()
STATS: Counter = Counter()

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


class Target:
    """The server under test with a short repr (hypothesis prints the test's arguments)."""

    def __init__(self, server, signed: bool) -> None:
        self.server = server
        self.signed = signed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    def __repr__(self) -> str:
        return f"<{'signed' if self.signed else 'unsigned'} gunicorn on port {self.server.port}>"


@pytest.fixture(scope="module", params=["unsigned", "signed"])
def server(request):
    env = settings_env()
    if request.param == "signed":
        env.update({"BOKEH_SIGN_SESSIONS": "yes", "BOKEH_SECRET_KEY": KEY})
    s = launch("gunicorn", apps=[HELLO], env=env)
    touch(s)
    yield Target(s, request.param == "signed")
    s.stop()


# -- tokens and ids, by kind -------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signature(text: str, key: str) -> str:
    return b64(hmac.new(key.encode(), text.encode("utf-8", "surrogatepass"), hashlib.sha256).digest())


def make_id(kind: str, signed: bool) -> str:
    if kind == "valid":
        return generate_session_id(secret_key=KEY.encode(), signed=signed)
    if kind == "wrong-key":
        return generate_session_id(secret_key=OTHER_KEY.encode(), signed=True)
    if kind == "unsigned":
        return generate_session_id(secret_key=None, signed=False)
    if kind == "truncated":
        return generate_session_id(secret_key=KEY.encode(), signed=True)[:-3]
    if kind == "two-dots":
        return generate_session_id(secret_key=KEY.encode(), signed=True) + ".x"
    raise ValueError(kind)


ID_KINDS = ["valid", "wrong-key", "unsigned", "truncated", "two-dots"]
TOKEN_KINDS = ["valid", "page", "expired", "forged", "wrong-key-id", "unsigned-id", "tampered-payload",
               "tampered-signature", "truncated", "no-signature", "extra-segment", "payload-list",
               "no-session-id", "int-session-id", "str-expiry", "no-expiry", "not-base64", "garbage",
               "empty", "non-ascii", "bad-zlib", "huge-extra"]


PAGE_TOKENS: dict[int, tuple[float, str]] = {}


def page_token_for(server) -> str:
    """A token from a real page of this server (cached for a minute; tokens live 300 s)."""
    cached = PAGE_TOKENS.get(server.port)
    if cached is None or time.monotonic() - cached[0] > 60:
        cached = PAGE_TOKENS[server.port] = (time.monotonic(), wire.page_token(server.url))
    return cached[1]


def make_token(kind: str, signed: bool, cut: int = 0, page_token: str | None = None) -> str:
    key = KEY.encode()
    sid = generate_session_id(secret_key=key, signed=signed)

    def mint(session_id=sid, k=key, expiration=300, extra=None, sign=signed):
        return generate_jwt_token(session_id, secret_key=k, signed=sign, extra_payload=extra,
                                  expiration=expiration)

    def raw(payload: dict | list | str) -> str:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        base = b64(text.encode("utf-8", "surrogatepass"))
        return f"{base}.{_signature(base, KEY)}" if signed else base

    now = int(time.time())
    if kind == "valid":
        return mint()
    if kind == "page":
        return page_token or mint()
    if kind == "expired":
        return mint(expiration=-60)
    if kind == "forged":
        return mint(k=OTHER_KEY.encode(), sign=True)
    if kind == "wrong-key-id":  # token signed with the right key around an id signed with another
        base = mint(session_id=make_id("wrong-key", True), sign=False)
        return f"{base}.{_signature(base, KEY)}"
    if kind == "unsigned-id":
        base = mint(session_id=make_id("unsigned", False), sign=False)
        return f"{base}.{_signature(base, KEY)}"
    if kind == "tampered-payload":
        token = mint()
        base, _, sig = token.partition(".")
        payload = json.loads(_unb64(base))
        payload["session_expiry"] = now + 10**6
        return b64(json.dumps(payload).encode()) + (f".{sig}" if sig else "")
    if kind == "tampered-signature":
        token = mint(sign=True)
        return token[:-1] + ("A" if token[-1] != "A" else "B")
    if kind == "truncated":
        token = mint()
        return token[: max(1, len(token) - 1 - cut % len(token))]
    if kind == "no-signature":
        return mint().split(".", 1)[0]
    if kind == "extra-segment":
        return mint() + ".extra"
    if kind == "payload-list":
        return raw(["session_id", sid])
    if kind == "no-session-id":
        return raw({"session_expiry": now + 300})
    if kind == "int-session-id":
        return raw({"session_id": 12345, "session_expiry": now + 300})
    if kind == "str-expiry":
        return raw({"session_id": sid, "session_expiry": str(now + 300)})
    if kind == "no-expiry":
        return raw({"session_id": sid})
    if kind == "not-base64":
        return "%%%%.$$$$" if signed else "%%%%"
    if kind == "garbage":
        return "not-a-token"
    if kind == "empty":
        return ""
    if kind == "non-ascii":
        return mint()[:-2] + "é\u00ff"
    if kind == "bad-zlib":
        return raw({"session_id": sid, "session_expiry": now + 300, "__bk__zlib_": b64(b"not zlib")})
    if kind == "huge-extra":
        blob = b64(zlib.compress(json.dumps({"headers": {"X": "y" * 50_000}}).encode(), 9))
        return raw({"session_id": sid, "session_expiry": now + 300, "__bk__zlib_": blob})
    raise ValueError(kind)


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def reference_token_ok(token: str, signed: bool, check_expiry: bool) -> bool:
    """Contract 3.3 with bokeh.util.token as the reference implementation."""
    try:
        if signed and not check_token_signature(token, secret_key=KEY.encode(), signed=True):
            return False
        session_id = get_session_id(token)
        if not isinstance(session_id, str) or not session_id:
            return False
        payload = get_token_payload(token)
        if not isinstance(payload, dict):
            return False
    except Exception:
        return False
    if check_expiry:
        expiry = payload.get("session_expiry")
        return isinstance(expiry, int) and not isinstance(expiry, bool) and time.time() < expiry
    return True


# -- raw HTTP -----------------------------------------------------------------------------------

def http_get(server, target: bytes, headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, dict, bytes]:
    sock = connect(server.port)
    try:
        head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:" + str(server.port).encode() + b"\r\n"
        for name, value in headers:
            head += name + b": " + value + b"\r\n"
        sock.sendall(head + b"Connection: close\r\n\r\n")
        status, response_headers, rest = read_http_head(sock)
        body = rest
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, response_headers, body
    finally:
        sock.close()


def check_http_answer(status: int, body: bytes, what: Any) -> None:
    STATS[f"http {status}"] += 1
    assert status in HTTP_STATUSES, f"status {status} for {what!r}: {body[:300]!r}"
    assert b"Traceback" not in body, f"traceback in the body for {what!r}: {body[:2000]!r}"


# -- strategies: query strings -------------------------------------------------------------------

_BOKEH_KEYS = ["bokeh-session-id", "bokeh-token", "bokeh-autoload-element", "bokeh-app-path",
               "bokeh-absolute-url", "resources", "bokeh-session-id", "bokeh-token"]
_text = st.text(max_size=16)
_value = st.one_of(
    _text,
    st.tuples(st.just("id"), st.sampled_from(ID_KINDS)),
    st.tuples(st.just("token"), st.sampled_from(TOKEN_KINDS), st.integers(0, 400)),
    st.sampled_from(["", " ", "\t", "%", "%%", "null", "undefined", "..", "/", "http://evil.example/x.js"]),
)
_encoding = st.sampled_from(["quote", "quote", "quote", "plus", "plus", "raw", "raw", "broken"])
_pair = st.tuples(st.one_of(st.sampled_from(_BOKEH_KEYS), _text), _value, _encoding)


def realize(value: Any, signed: bool) -> str:
    if isinstance(value, tuple) and value[0] == "id":
        return make_id(value[1], signed)
    if isinstance(value, tuple) and value[0] == "token":
        return make_token(value[1], signed, value[2])
    return value


def encode(text: str, how: str, draw_junk: str = "%zz") -> bytes:
    if how == "quote":
        return quote(text, safe="").encode("ascii")
    if how == "plus":
        return quote_plus(text).encode("ascii")
    if how == "raw":
        return text.encode("utf-8", "surrogatepass")
    return quote(text, safe="").encode("ascii") + draw_junk.encode("latin-1")


DOC_PATHS = (b"/hello", b"/hello/")
_JUNK = st.sampled_from(["%", "%z", "%zz", "%C3", "%00", "%0A", "%FF%FE", "%E2%82", "+%2", "%%41"])
_paths = st.one_of(st.sampled_from([b"/hello", b"/hello/"]),
                   st.sampled_from([b"/hello", b"/hello/", b"/hello/autoload.js", b"/hello/metadata",
                                    b"/hello/ws", b"/", b"/hello/static/js/bokeh.min.js"]))


@st.composite
def _query_request(draw):
    pairs = draw(st.lists(_pair, max_size=5))
    header = draw(st.one_of(st.none(), st.none(), _value, st.binary(max_size=12)))
    path = draw(_paths)
    junk = [draw(_JUNK) for _ in pairs]
    return path, pairs, header, junk


def _clean(text: str, how: str) -> bool:
    return how in ("quote", "plus") or (how == "raw" and re.fullmatch(r"[A-Za-z0-9_.~-]*", text) is not None)


def expected_doc_status(pairs: list[tuple[str, str, str]], header: str | None, signed: bool) -> set[int] | None:
    """The doc page's answer for an unambiguous request (contract 2.1, 3.3, 3.6); None if ambiguous."""
    args: dict[str, list[str]] = {}
    for key, text, how in pairs:
        if not _clean(text, how) or not _clean(key, how):
            return None
        if key not in ("bokeh-token", "bokeh-session-id"):
            continue  # other arguments never change the decision
        if any(c.isspace() or unicodedata.category(c) == "Cc" for c in text):
            return None  # stripping and control-character rules: leave to the weak oracle
        args.setdefault(key, []).append(text)
    token = args.get("bokeh-token", [None])[-1]
    session_id = args.get("bokeh-session-id", [None])[-1]
    if header is not None:
        if session_id is not None:
            return {403}
        session_id = header
    if token is not None:
        if session_id is not None:
            return {403}
        return {200} if reference_token_ok(token, signed, check_expiry=False) else {403}
    if session_id is None:
        return {200}
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,256}", session_id) or ".." in session_id:
        return {400}  # a client-chosen id: no separators, "..", control characters, NUL
    if signed and not (session_id.isascii()
                       and check_session_id_signature(session_id, secret_key=KEY.encode(), signed=True)):
        return {403}
    return {200}


def run_query_request(server, request) -> None:
    path, pairs, header, junk = request
    signed = server.signed
    realized = [(realize(k, signed), realize(v, signed), how) for k, v, how in pairs]
    query = b"&".join(encode(k, how, j) + b"=" + encode(v, how, j) for (k, v, how), j in zip(realized, junk))
    target = path + (b"?" + query if query else b"")
    headers = []
    header_text = None
    if isinstance(header, bytes):
        headers.append((b"Bokeh-Session-Id", header.replace(b"\r", b"").replace(b"\n", b"")))
    elif header is not None:
        header_text = realize(header, signed)
        headers.append((b"Bokeh-Session-Id", header_text.encode("utf-8", "surrogatepass")
                        .replace(b"\r", b"").replace(b"\n", b"")))
    STATS["http requests"] += 1
    status, response_headers, body = http_get(server, target, headers)
    what = (target, headers)
    check_http_answer(status, body, what)
    if path in DOC_PATHS and status == 200:
        tokens = wire._TOKEN_RE.findall(body.decode("utf-8", "replace"))
        assert len(tokens) == 1, f"{len(tokens)} tokens in the page for {what!r}"
        if signed:
            # whatever was asked for, a served page carries a token that verifies with the key
            assert check_token_signature(tokens[0], secret_key=KEY.encode(), signed=True), what
    if path in DOC_PATHS:
        if header is None:
            clean_header, unambiguous = None, True
        elif isinstance(header, bytes):
            clean_header, unambiguous = None, False
        else:
            clean_header = header_text
            unambiguous = re.fullmatch(r"[!-~]*", header_text) is not None
        expected = expected_doc_status(realized, clean_header, signed) if unambiguous else None
        if expected is not None:
            STATS["http oracle checks"] += 1
            assert status in expected, f"{status} for {what!r}, expected {expected}: {body[:200]!r}"


# -- strategies: websocket handshakes ------------------------------------------------------------

_items = st.one_of(
    st.just("bokeh"), st.just("bokeh"),
    st.sampled_from(["Bokeh", "BOKEH", "", " ", "bokeh2", "notbokeh", "bokeh;", "chat"]),
    st.tuples(st.just("token"), st.sampled_from(TOKEN_KINDS), st.integers(0, 400)),
    _text,
)
_separator = st.sampled_from([", ", ",", " , ", ",,", ";", ", ,", "\t,"])


@st.composite
def _handshake(draw):
    shape = draw(st.integers(0, 9))
    if shape < 6:  # mostly well-formed "bokeh, <token>" with a random token
        items = ["bokeh", ("token", draw(st.sampled_from(TOKEN_KINDS)), draw(st.integers(0, 400)))]
        separators = [draw(st.sampled_from([", ", ",", " , ", ",  "]))]
    else:
        items = draw(st.lists(_items, min_size=0, max_size=4))
        separators = [draw(_separator) for _ in items[1:]]
    origin = draw(st.one_of(st.none(), st.none(), st.none(),
                            st.sampled_from(["http://evil.example.com", "null", "http://127.0.0.1", "garbage"])))
    version = draw(st.sampled_from(["13"] * 9 + ["8", ""]))
    raw_bytes = draw(st.integers(0, 9)) == 0  # send the header as UTF-8 instead of latin-1
    omit = draw(st.integers(0, 14)) == 0  # no Sec-WebSocket-Protocol header at all
    return items, separators, origin, version, raw_bytes, omit


def subprotocol_offers(value: str) -> tuple[list[str], list[str]]:
    """(Tornado's split: strip, empties kept; a lenient split dropping empty entries)."""
    strict = [p.strip() for p in value.split(",")] if value else []
    return strict, [p for p in strict if p]


def expected_handshake(value: str | None, origin: str | None, version: str, port: int,
                       signed: bool) -> set[int]:
    """Statuses the handshake may answer. Several problems at once allow any of their codes."""
    problems: set[int] = set()
    if version != "13":
        problems.add(426)
    if origin is not None and origin != f"http://127.0.0.1:{port}":
        problems.add(403)  # foreign, "null" or malformed origins; the default allowlist is localhost:<port>
    if value is None:
        problems.add(400)
        return problems
    strict, lenient = subprotocol_offers(value)
    outcomes = set()
    if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
        outcomes.add(400)  # control characters are not allowed in header values (RFC 9110 5.5)
    for offers in (strict, lenient):
        if len(offers) != 2 or offers[0] != "bokeh":
            outcomes.add(400)
        else:
            outcomes.add(101 if reference_token_ok(offers[1], signed, check_expiry=True) else 403)
    if problems:
        return problems | (outcomes - {101})
    return outcomes


def run_handshake(server, spec, page: str | None) -> None:
    items, separators, origin, version, raw_bytes, omit = spec
    signed = server.signed
    texts = [make_token(i[1], signed, i[2], page) if isinstance(i, tuple) else i for i in items]
    value = None
    if not omit:
        value = texts[0] if texts else ""
        for sep, text in zip(separators, texts[1:]):
            value += sep + text
        value = value.replace("\r", "").replace("\n", "")
    encoded = None if value is None else value.encode("utf-8" if raw_bytes else "latin-1", "replace")
    wire_value = None if encoded is None else encoded.decode("latin-1")  # what the server sees
    allowed = expected_handshake(wire_value, origin, version, server.port, signed)
    STATS["handshakes"] += 1
    sock = connect(server.port)
    try:
        request = handshake_request("/hello/ws", server.port, encoded, origin, version=version)
        sock.sendall(request)
        status, headers, rest = read_http_head(sock)
        STATS[f"ws {status}"] += 1
        what = (wire_value[:300] if wire_value else wire_value, origin, version)
        assert status in WS_STATUSES, f"status {status} for {what!r}"
        assert status in allowed, f"status {status} for {what!r}, expected one of {allowed}"
        if status == 101:
            assert headers.get("sec-websocket-protocol") == "bokeh", headers
            reader = FrameReader(sock, rest)
            assert reader.read_message()["msgtype"] == "ACK"
            sock.sendall(close_frame())
        else:
            length = int(headers.get("content-length", "0"))
            body = rest
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            assert b"Traceback" not in body, body[:2000]
    finally:
        sock.close()


# -- the tests ------------------------------------------------------------------------------------

@settings(max_examples=CI_EXAMPLES, deadline=None, suppress_health_check=_HEALTH)
@given(request=_query_request())
def test_query_strings_and_session_id_headers(server, request):
    run_query_request(server, request)


@settings(max_examples=CI_EXAMPLES, deadline=None, suppress_health_check=_HEALTH)
@given(spec=_handshake())
def test_websocket_handshake_tokens_and_subprotocols(server, spec):
    run_handshake(server, spec, page_token_for(server))


@settings(max_examples=CI_EXAMPLES, deadline=None, suppress_health_check=_HEALTH)
@given(kind=st.sampled_from(TOKEN_KINDS), cut=st.integers(0, 400), where=st.sampled_from(["arg", "ws"]))
def test_every_token_kind_gets_the_reference_answer(server, kind, cut, where):
    """Each token kind alone, on the page (``bokeh-token``) and on the handshake."""
    signed = server.signed
    token = make_token(kind, signed, cut, page_token_for(server))
    if where == "arg":
        STATS["http requests"] += 1
        status, _, body = http_get(server, b"/hello/?bokeh-token=" + quote(token, safe="").encode())
        check_http_answer(status, body, token)
        expected = 200 if reference_token_ok(token, signed, check_expiry=False) else 403
        assert status == expected, f"{kind}: {status}, expected {expected} for {token[:200]!r}"
    else:
        run_handshake(server, (["bokeh", ("token", kind, cut)], [", "], None, "13", False, False),
                      page_token_for(server))


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_http_and_handshake_fuzz_slow(server):
    """Both generators at 10x the CI size (x HARDENING_SCALE), then the health checks."""
    @settings(max_examples=slow_size(5000), deadline=None, suppress_health_check=_HEALTH)
    @given(request=_query_request(), spec=_handshake())
    def fuzz(request, spec):
        run_query_request(server, request)
        run_handshake(server, spec, page_token_for(server))

    fuzz()
    check_health(server)


def test_server_healthy_after_fuzzing(server):
    check_health(server)


def check_health(server) -> None:
    fresh_session_works(server)
    log = server.log_text()
    print(f"\nhttp fuzz ({'signed' if server.signed else 'unsigned'}): {dict(sorted(STATS.items()))}")
    STATS.clear()
    assert "Exception on" not in log, tracebacks(log)[:3]
    assert not tracebacks(log), tracebacks(log)[:3]
