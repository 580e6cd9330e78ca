"""bokeh_flask.app.sessions.tokens: ids, tokens, verification and the session-request decision order."""
from __future__ import annotations

import base64
import json
import zlib

import pytest
from bokeh.util.token import (
    check_session_id_signature,
    check_token_signature,
    generate_jwt_token,
    generate_session_id,
    get_session_id,
    get_token_payload,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bokeh_flask.app.config.settings import build_settings
from bokeh_flask.app.sessions import tokens as tokens_module
from bokeh_flask.app.sessions.errors import HTTPError
from bokeh_flask.app.sessions.requests import RequestInfo
from bokeh_flask.app.sessions.tokens import (
    TokenError,
    TokenService,
    build_extra_payload,
    decode_token,
    resolve_session_request,
)

KEY = "s3cr3t-" * 7
KEYB = KEY.encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_settings(**overrides):
    if overrides.get("session_ids", "unsigned") != "unsigned":
        overrides.setdefault("secret_key", KEY)
    return build_settings(overrides=overrides, environ={})


def service(mode="unsigned", **overrides):
    s = make_settings(session_ids=mode, **overrides)
    return s, TokenService.from_settings(s)


SIGNED = TokenService(True, KEYB, 300)
UNSIGNED = TokenService(False, None, 300)


# -- ids ----------------------------------------------------------------------------------

def test_unsigned_ids():
    ids = {UNSIGNED.new_session_id() for _ in range(50)}
    assert len(ids) == 50
    for i in ids:
        assert len(i) == 44 and i.isalnum() and "." not in i


def test_signed_ids_verify_with_bokeh():
    for _ in range(20):
        i = SIGNED.new_session_id()
        assert len(i) == 88 and i[44] == "."
        assert check_session_id_signature(i, secret_key=KEYB, signed=True)
        assert not check_session_id_signature(i, secret_key=b"other" * 9, signed=True)
        assert SIGNED.session_id_valid(i)
        assert not TokenService(True, b"other" * 9, 300).session_id_valid(i)


def test_session_id_valid_rules():
    assert UNSIGNED.session_id_valid("anything goes")
    assert not SIGNED.session_id_valid("foo")
    assert not SIGNED.session_id_valid("a" * 44)
    good = generate_session_id(secret_key=KEYB, signed=True)
    assert SIGNED.session_id_valid(good)
    assert not SIGNED.session_id_valid(good[:-1])
    assert not SIGNED.session_id_valid(good + "x")
    assert not SIGNED.session_id_valid(("b" if good[0] != "b" else "c") + good[1:])


def test_ids_not_affected_by_bokeh_import_time_defaults(monkeypatch):
    # whatever BOKEH_SIGN_SESSIONS/SECRET_KEY the process has, the service uses its own
    monkeypatch.setenv("BOKEH_SIGN_SESSIONS", "yes")
    monkeypatch.setenv("BOKEH_SECRET_KEY", "x" * 44)
    assert "." not in UNSIGNED.new_session_id()
    assert len(UNSIGNED.new_token("abc").split(".")) == 1


# -- tokens -------------------------------------------------------------------------------

@pytest.mark.parametrize("svc", [UNSIGNED, SIGNED], ids=["unsigned", "signed"])
def test_round_trip_with_bytes_payload(svc):
    sid = svc.new_session_id()
    extra = {"headers": {"User-Agent": "x", "X-Ünïcode": "ü"}, "cookies": {"c": "v"},
             "arguments": {"a": [b"1", b"", b"\x00\xff"]}, "blob": b"\x89PNG", "n": [1, {"bytes": "AA"}]}
    token = svc.new_token(sid, extra)
    got_id, payload = svc.verify(token, check_expiry=True)
    assert got_id == sid
    assert payload["headers"] == extra["headers"]
    assert payload["cookies"] == extra["cookies"]
    assert payload["arguments"] == {"a": [b"1", b"", b"\x00\xff"]}
    assert payload["blob"] == b"\x89PNG"
    assert isinstance(payload["session_expiry"], int)
    # compatible with Bokeh's own readers
    assert get_session_id(token) == sid
    assert get_token_payload(token)["blob"] == b"\x89PNG"
    assert check_token_signature(token, secret_key=KEYB, signed=svc.sign)


def test_token_without_extra_payload():
    token = SIGNED.new_token(SIGNED.new_session_id())
    sid, payload = SIGNED.verify(token, check_expiry=True)
    assert set(payload) == {"session_expiry"}


def test_token_expiry_is_now_plus_expiration():
    svc = TokenService(False, None, 123)
    before = tokens_module.now_seconds()
    _, payload = svc.verify(svc.new_token("abc"), check_expiry=True)
    assert before + 123 <= payload["session_expiry"] <= tokens_module.now_seconds() + 123


def test_bokeh_minted_tokens_verify():
    sid = generate_session_id(secret_key=KEYB, signed=True)
    token = generate_jwt_token(sid, secret_key=KEYB, signed=True, extra_payload={"a": 1})
    expiry = get_token_payload(token)["session_expiry"]
    assert SIGNED.verify(token, check_expiry=True) == (sid, {"session_expiry": expiry, "a": 1})


def _tamper_payload(token: str) -> str:
    head, _, sig = token.partition(".")
    data = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    data["session_expiry"] += 1000
    return b64(json.dumps(data).encode()) + "." + sig


def test_verify_rejects_forgeries():
    sid = SIGNED.new_session_id()
    token = SIGNED.new_token(sid, {"x": 1})
    head, _, sig = token.partition(".")
    bad = {
        "forged signature": head + "." + ("A" * len(sig)),
        "flipped signature char": head + "." + sig[:-1] + ("A" if sig[-1] != "A" else "B"),
        "tampered payload": _tamper_payload(token),
        "no signature": head,
        "empty signature": head + ".",
        "truncated": token[: len(token) // 2],
        "truncated by one": token[:-1],
        "extra segment": token + ".x",
        "empty": "",
        "dot": ".",
        "unsigned token": UNSIGNED.new_token(sid),
        "unsigned id in signed token": generate_jwt_token("plain-id", secret_key=KEYB, signed=True),
        "forged id signature": generate_jwt_token(sid[:45] + "A" * 43, secret_key=KEYB, signed=True),
    }
    for label, value in bad.items():
        with pytest.raises(TokenError):
            SIGNED.verify(value, check_expiry=False)
            pytest.fail(label)


def test_verify_rejects_wrong_key():
    other = TokenService(True, b"another key entirely, 32+ bytes", 300)
    token = other.new_token(other.new_session_id())
    with pytest.raises(TokenError, match="signature"):
        SIGNED.verify(token, check_expiry=False)


def test_expired_token_rejected_only_with_check_expiry():
    expired = TokenService(True, KEYB, -5).new_token(SIGNED.new_session_id())
    with pytest.raises(TokenError, match="expired"):
        SIGNED.verify(expired, check_expiry=True)
    sid, payload = SIGNED.verify(expired, check_expiry=False)
    assert payload["session_expiry"] < tokens_module.now_seconds()


def test_expiry_boundary(monkeypatch):
    token = SIGNED.new_token(SIGNED.new_session_id())
    expiry = SIGNED.verify(token, check_expiry=True)[1]["session_expiry"]
    monkeypatch.setattr(tokens_module, "now_seconds", lambda: expiry - 1)
    SIGNED.verify(token, check_expiry=True)
    monkeypatch.setattr(tokens_module, "now_seconds", lambda: expiry)  # now >= expiry: expired
    with pytest.raises(TokenError):
        SIGNED.verify(token, check_expiry=True)


def test_token_without_expiry_rejected_when_checked():
    token = b64(json.dumps({"session_id": "abc"}).encode())
    assert UNSIGNED.verify(token, check_expiry=False) == ("abc", {})
    with pytest.raises(TokenError):
        UNSIGNED.verify(token, check_expiry=True)


def test_unsigned_service_accepts_any_decodable_token():
    token = SIGNED.new_token(SIGNED.new_session_id())
    assert UNSIGNED.verify(token, check_expiry=True)[0] == get_session_id(token)


@pytest.mark.parametrize("head", [
    None, [1], "s", 1, {}, {"session_id": 1}, {"session_id": ""}, {"session_id": None},
    {"session_id": "a", "__bk__zlib_": 1}, {"session_id": "a", "__bk__zlib_": "!!!"},
    {"session_id": "a", "__bk__zlib_": b64(zlib.compress(b"[1]"))},
    {"session_id": "a", "__bk__zlib_": b64(zlib.compress(b"\xff\xfe"))},
    {"session_id": "a", "__bk__zlib_": b64(zlib.compress(b'{"x": {"bytes": 1}}'))},
    {"session_id": "a", "__bk__zlib_": b64(b"not zlib")},
])
def test_malformed_payloads_raise_token_error(head):
    token = b64(json.dumps(head).encode())
    for svc in (UNSIGNED, SIGNED):
        signed_token = token + "." + tokens_module._signature(token, KEYB)
        with pytest.raises(TokenError):
            svc.verify(signed_token if svc.sign else token, check_expiry=False)


@pytest.mark.parametrize("token", ["abc.é", "abc.\u00ff", "abc.ü" * 3, "e30.日本"])
def test_non_ascii_signature_is_token_error(token):
    """A signature with non-ASCII characters (e.g. ?bokeh-token=abc.%C3%A9) is a refused
    token, not a TypeError from hmac.compare_digest."""
    with pytest.raises(TokenError):
        SIGNED.verify(token, check_expiry=False)


def test_non_ascii_session_id_signature_is_invalid_not_error():
    assert SIGNED.session_id_valid("a" * 44 + ".é") is False


@pytest.mark.parametrize("depth", [1000, 5000])
def test_deeply_nested_json_is_token_error(depth):
    """A ~1.3 KB token of nested JSON arrays must be a TokenError, not RecursionError."""
    token = b64(b"[" * depth)
    with pytest.raises(TokenError):
        UNSIGNED.verify(token, check_expiry=False)


def test_decode_token_reads_without_checking():
    token = SIGNED.new_token("not-signed-id", {"a": b"x"})
    sid, payload = decode_token(token)
    assert sid == "not-signed-id" and payload["a"] == b"x"


# -- property tests: verify only ever returns or raises TokenError ------------------------

_b64_text = st.binary(max_size=200).map(b64)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
_json_head = st.one_of(
    _json_value,
    st.fixed_dictionaries({"session_id": _json_value}, optional={"session_expiry": _json_value,
                                                                 "__bk__zlib_": _json_value}),
    st.fixed_dictionaries({"session_id": st.text(min_size=1, max_size=20),
                           "__bk__zlib_": st.one_of(_b64_text,
                                                    _json_value.map(
                                                        lambda v: b64(zlib.compress(json.dumps(v).encode()))))}),
).map(lambda v: b64(json.dumps(v).encode()))
_tokens = st.one_of(
    st.text(),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=+/"),
    st.tuples(_b64_text, st.text(max_size=50)).map(".".join),
    st.tuples(_json_head, st.text(max_size=50)).map(".".join),
    _json_head,
    _json_head.map(lambda h: h + "." + tokens_module._signature(h, KEYB)),
)


@hsettings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=_tokens, check_expiry=st.booleans())
def test_verify_only_raises_token_error(token, check_expiry):
    for svc in (UNSIGNED, SIGNED):
        try:
            sid, payload = svc.verify(token, check_expiry=check_expiry)
        except TokenError:
            continue
        assert isinstance(sid, str) and sid
        assert isinstance(payload, dict)


# -- resolve_session_request (contract 2.1) -----------------------------------------------

def req(query: str = "", headers: dict | None = None, cookies: dict | None = None, **environ) -> RequestInfo:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/app", "QUERY_STRING": query, "HTTP_HOST": "h:1"}
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    if cookies:
        env["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    env.update(environ)
    return RequestInfo.from_environ(env)


def resolve(request, mode="unsigned", extra=None, **overrides):
    s, svc = service(mode, **overrides)
    return resolve_session_request(request, svc, s, extra), svc


def http_error(request, mode="unsigned", **overrides) -> HTTPError:
    with pytest.raises(HTTPError) as err:
        resolve(request, mode, **overrides)
    return err.value


def test_new_session_unsigned():
    (sid, token), svc = resolve(req())
    assert len(sid) == 44
    assert svc.verify(token, check_expiry=True)[0] == sid


def test_new_session_signed():
    (sid, token), svc = resolve(req(), "signed")
    assert len(sid) == 88 and check_session_id_signature(sid, secret_key=KEYB, signed=True)
    assert svc.verify(token, check_expiry=True)[0] == sid
    assert check_token_signature(token, secret_key=KEYB, signed=True)


def test_argument_and_header_conflict():
    e = http_error(req("bokeh-session-id=a", {"Bokeh-Session-Id": "a"}))
    assert (e.status, e.reason) == (403, "session ID was provided as an argument and header")


@pytest.mark.parametrize("where", ["argument", "header"])
def test_token_and_session_id_conflict(where):
    token = UNSIGNED.new_token("abc")
    r = req(f"bokeh-token={token}&bokeh-session-id=abc") if where == "argument" else \
        req(f"bokeh-token={token}", {"Bokeh-Session-Id": "abc"})
    e = http_error(r)
    assert (e.status, e.reason) == (403, "Both token and session ID were provided")


def test_argument_header_conflict_checked_before_token_conflict():
    token = UNSIGNED.new_token("abc")
    e = http_error(req(f"bokeh-token={token}&bokeh-session-id=a", {"Bokeh-Session-Id": "a"}))
    assert e.reason == "session ID was provided as an argument and header"


def test_header_id_is_case_insensitive_and_used():
    (sid, token), _ = resolve(RequestInfo.from_environ({"HTTP_BOKEH_SESSION_ID": "  myid "}))
    assert sid == "myid"
    assert get_session_id(token) == "myid"


def test_argument_id_last_wins_and_is_stripped():
    (sid, _), _ = resolve(req("bokeh-session-id=first&bokeh-session-id=%20second%09"))
    assert sid == "second"


def test_given_token_is_used_verbatim():
    token = UNSIGNED.new_token("from-token", {"arguments": {"q": [b"1"]}})
    (sid, got), _ = resolve(req(f"bokeh-token={token}&other=1"))
    assert (sid, got) == ("from-token", token)


def test_given_token_expiry_not_checked_on_http():
    token = TokenService(True, KEYB, -100).new_token(SIGNED.new_session_id())
    (sid, got), _ = resolve(req(f"bokeh-token={token}"), "signed")
    assert got == token


def test_invalid_token_in_signed_mode():
    for bad in ["garbage", UNSIGNED.new_token("abc"),
                TokenService(True, b"x" * 40, 300).new_token(generate_session_id(secret_key=b"x" * 40, signed=True))]:
        e = http_error(req(f"bokeh-token={bad}"), "signed")
        assert (e.status, e.reason) == (403, "Invalid token or session ID")


def test_undecodable_token_in_unsigned_mode_is_refused_not_500():
    e = http_error(req("bokeh-token=%%%garbage"))
    assert e.status == 403


def test_unsigned_id_in_signed_mode():
    for mode in ("signed", "external-signed"):
        e = http_error(req("bokeh-session-id=foo"), mode)
        assert (e.status, e.reason) == (403, "Invalid token or session ID")


def test_signed_id_accepted():
    sid = generate_session_id(secret_key=KEYB, signed=True)
    for mode in ("signed", "external-signed"):
        (got, token), svc = resolve(req(f"bokeh-session-id={sid}"), mode)
        assert got == sid
        assert svc.verify(token, check_expiry=True)[0] == sid


def test_any_id_in_unsigned_mode():
    (sid, _), _ = resolve(req("bokeh-session-id=mysession"))
    assert sid == "mysession"


def test_external_signed_without_id():
    e = http_error(req(), "external-signed")
    assert (e.status, e.reason) == (403, "No bokeh-session-id provided")


@pytest.mark.parametrize("r", [
    pytest.param(lambda: req("bokeh-session-id="), id="empty-argument"),
    pytest.param(lambda: req("bokeh-session-id=%20%20"), id="blank-argument"),
    pytest.param(lambda: req("", {"Bokeh-Session-Id": ""}), id="empty-header"),
    pytest.param(lambda: req("", {"Bokeh-Session-Id": "  "}), id="blank-header"),
])
@pytest.mark.parametrize("mode", ["unsigned", "signed"])
def test_empty_session_id_is_400(r, mode):
    e = http_error(r(), mode)
    assert e.status == 400


@pytest.mark.parametrize("arg", ["é", "%C3%A9", "x.%C3%A9"])
def test_non_ascii_ids_are_400_and_tokens_403_in_signed_mode(arg):
    assert http_error(req(f"bokeh-session-id={'a' * 44}.{arg}"), "signed").status == 400
    assert http_error(req(f"bokeh-token=abc.{arg}"), "signed").status == 403


def test_payload_has_headers_cookies_arguments_and_drops_cookie_header():
    r = req("foo=bar&foo=baz&blank=&bokeh-session-id=sid1", {"User-Agent": "UA", "X-Custom": "abc"},
            {"c1": "v1", "c2": "v2"})
    (sid, token), svc = resolve(r)
    _, payload = svc.verify(token, check_expiry=True)
    assert sid == "sid1"
    assert payload["headers"] == {"Host": "h:1", "User-Agent": "UA", "X-Custom": "abc"}
    assert "Cookie" not in payload["headers"]
    assert payload["cookies"] == {"c1": "v1", "c2": "v2"}
    assert payload["arguments"] == {"foo": [b"bar", b"baz"], "blank": [b""], "bokeh-session-id": [b"sid1"]}
    assert "session_id" not in payload and isinstance(payload["session_expiry"], int)


def test_cookie_header_kept_without_cookies_or_when_included():
    (_, token), svc = resolve(req("", {"Cookie": ""}))
    payload = svc.verify(token, check_expiry=False)[1]
    assert payload["cookies"] == {}
    (_, token), svc = resolve(req("", {"X-A": "1"}, {"c": "v"}), include_headers=["Cookie", "X-A"])
    payload = svc.verify(token, check_expiry=False)[1]
    assert payload["headers"] == {"Cookie": "c=v", "X-A": "1"}
    assert payload["cookies"] == {"c": "v"}


def test_header_and_cookie_filters():
    r = req("", {"User-Agent": "UA", "Authorization": "Bearer x", "X-A": "1"}, {"keep": "1", "secret": "2"})
    (_, token), svc = resolve(r, include_headers=["X-A", "Not-There"], include_cookies=["keep"])
    p = svc.verify(token, check_expiry=False)[1]
    assert p["headers"] == {"X-A": "1"} and p["cookies"] == {"keep": "1"}
    (_, token), svc = resolve(r, exclude_headers=["Authorization"], exclude_cookies=["secret"])
    p = svc.verify(token, check_expiry=False)[1]
    assert "Authorization" not in p["headers"] and p["headers"]["X-A"] == "1"
    assert p["cookies"] == {"keep": "1"}
    # matching is exact against the Title-Case name (as Bokeh)
    (_, token), svc = resolve(r, exclude_headers=["authorization"])
    assert "Authorization" in svc.verify(token, check_expiry=False)[1]["headers"]


def test_extra_from_process_request_merged_on_top():
    (sid, token), svc = resolve(req("a=1"), extra={"user": "ann", "arguments": {"z": [b"9"]},
                                                   "session_id": "hijack"})
    p = svc.verify(token, check_expiry=False)[1]
    assert sid != "hijack" and get_session_id(token) == sid
    assert p["user"] == "ann" and p["arguments"] == {"z": [b"9"]}
    assert "session_id" not in p


def test_fresh_token_each_time_for_same_id():
    r = req("bokeh-session-id=same")
    (s1, t1), _ = resolve(r)
    (s2, t2), _ = resolve(r)
    assert s1 == s2 == "same"


def test_token_of_an_authenticated_request_carries_no_login():
    """With auth on, the login cookies (declared by the provider or a setting, or read by
    the auth module's get_user) and the raw Cookie and credential headers stay out."""
    from bokeh_flask.app.auth.providers import AuthenticatedRequest

    request = AuthenticatedRequest.from_environ({
        "HTTP_COOKIE": "session=flask-login; user=alice; theme=dark; remember_token=r",
        "HTTP_AUTHORIZATION": "Basic YWxpY2U6c2VjcmV0", "HTTP_X_APP": "kept",
    })
    request.user = "alice"
    request.login_cookies = frozenset({"session", "user"})
    payload = build_extra_payload(request, build_settings(overrides={"login_cookies": ["remember_token"]},
                                                          environ={}))
    assert payload["cookies"] == {"theme": "dark"}
    assert "Cookie" not in payload["headers"] and "Authorization" not in payload["headers"]
    assert payload["headers"]["X-App"] == "kept"
    # without a user (auth off) Bokeh's rules stand: every cookie, minus the raw header
    request.user = None
    assert set(build_extra_payload(request, build_settings(environ={}))["cookies"]) == {
        "session", "user", "theme", "remember_token"}


def test_excluded_cookies_do_not_ride_in_the_raw_cookie_header():
    request = RequestInfo.from_environ({"HTTP_COOKIE": "secret=s1"})
    payload = build_extra_payload(request, build_settings(overrides={"exclude_cookies": ["secret"]}, environ={}))
    assert payload["cookies"] == {} and "Cookie" not in payload["headers"]


@pytest.mark.parametrize("session_id", ["../../etc/passwd", "a/b", "a\\\\b", "x\x00y", "tab\tid", "new\nline",
                                        "a..b", "é", "x" * 257])
def test_client_chosen_session_ids_that_are_refused(session_id):
    from bokeh_flask.app.sessions.tokens import session_id_problem

    assert session_id_problem(session_id)
    request = RequestInfo(arguments={"bokeh-session-id": [session_id.encode("utf-8", "surrogatepass")]})
    svc = TokenService(sign=False, secret_key=None, expiration=300)
    with pytest.raises(HTTPError) as err:
        resolve_session_request(request, svc, build_settings(environ={}), None)
    assert err.value.status == 400
    with pytest.raises(TokenError, match="session id in token"):
        svc.verify(generate_jwt_token(session_id, signed=False), check_expiry=False)


@pytest.mark.parametrize("session_id", ["mysession", "push-test_1", "v1.2", "x" * 256,
                                        "Ab9-_.Zz"])
def test_client_chosen_session_ids_that_keep_working(session_id):
    from bokeh_flask.app.sessions.tokens import session_id_problem

    assert session_id_problem(session_id) is None
    request = RequestInfo(arguments={"bokeh-session-id": [session_id.encode()]})
    svc = TokenService(sign=False, secret_key=None, expiration=300)
    assert resolve_session_request(request, svc, build_settings(environ={}), None)[0] == session_id


# -- bounded tokens (issue 21, item 4) ------------------------------------------------------

def bomb_token(inflated: int, session_id: str = "bomb") -> str:
    """An unsigned token whose compressed payload inflates to about ``inflated`` bytes."""
    data = json.dumps({"headers": {"X": "a" * inflated}}).encode()
    head = {"session_id": session_id, "session_expiry": 4102444800, "__bk__zlib_": b64(zlib.compress(data, 9))}
    return b64(json.dumps(head).encode())


def test_zlib_bomb_is_refused_without_inflating_it():
    token = bomb_token(15 * 1024 * 1024)
    assert len(token) < tokens_module.MAX_TOKEN_LENGTH
    with pytest.raises(tokens_module.TokenTooLarge, match="inflates past the limit of 65536 bytes"):
        UNSIGNED.verify(token, check_expiry=False)
    with pytest.raises(tokens_module.TokenTooLarge):
        decode_token(token)


def test_payload_up_to_the_limit_decodes():
    overhead = len(json.dumps({"headers": {"X": ""}}))
    token = bomb_token(tokens_module.MAX_TOKEN_PAYLOAD - overhead)
    assert len(decode_token(token)[1]["headers"]["X"]) == tokens_module.MAX_TOKEN_PAYLOAD - overhead
    with pytest.raises(tokens_module.TokenTooLarge):
        decode_token(bomb_token(tokens_module.MAX_TOKEN_PAYLOAD - overhead + 1))


def test_overlong_token_is_refused_before_decoding():
    token = b64(json.dumps({"session_id": "x", "pad": "p" * tokens_module.MAX_TOKEN_LENGTH}).encode())
    for svc in (UNSIGNED, SIGNED):
        with pytest.raises(tokens_module.TokenTooLarge, match="over the limit of 32768"):
            svc.verify(token, check_expiry=False)


def test_truncated_zlib_stream_is_token_error():
    data = zlib.compress(json.dumps({"headers": {}}).encode())[:-3]
    token = b64(json.dumps({"session_id": "a", "__bk__zlib_": b64(data)}).encode())
    with pytest.raises(TokenError, match="could not be decoded"):
        decode_token(token)


def test_bytes_in_payload_decode_as_bokeh_does():
    token = UNSIGNED.new_token("sid", {"raw": b"\x00\xffbytes", "n": 1})
    assert decode_token(token)[1] == {**get_token_payload(token), "raw": b"\x00\xffbytes", "n": 1}


def test_a_real_cookie_jar_fits_in_a_token():
    """A 7 KiB jar of random cookies (the largest we plan for) makes a token far below the limit."""
    import secrets

    cookies = {f"c{i}": secrets.token_urlsafe(96) for i in range(56)}
    request = req(headers={"User-Agent": "Mozilla/5.0 " * 8}, cookies=cookies)
    assert len(request.headers["Cookie"]) > 7 * 1024
    session_id, token = resolve_session_request(request, UNSIGNED, make_settings(), None)
    assert len(token) < tokens_module.MAX_TOKEN_LENGTH / 2
    assert decode_token(token)[1]["cookies"] == cookies


def test_bomb_in_bokeh_token_argument_is_a_400():
    request = RequestInfo(arguments={"bokeh-token": [bomb_token(10 * 1024 * 1024).encode()]})
    with pytest.raises(HTTPError) as err:
        resolve_session_request(request, UNSIGNED, make_settings(), None)
    assert err.value.status == 400 and "inflates past" in err.value.reason


def test_request_too_large_for_a_token_is_a_431():
    headers = {f"X-Big-{i}": "y" * 16000 for i in range(6)}
    with pytest.raises(HTTPError) as err:
        resolve_session_request(req(headers=headers), UNSIGNED, make_settings(), None)
    assert err.value.status == 431


def test_minting_and_decoding_agree_on_the_payload_limit():
    """What a page may mint, its websocket may decode, and no more (bytes counted as Bokeh
    encodes them)."""
    extra = {"raw": b"\x00" * 30, "headers": {"X": ""}}
    overhead = len(json.dumps({"raw": {"bytes": b64(b"\x00" * 30)}, "headers": {"X": ""}}))
    fits = {**extra, "headers": {"X": "a" * (tokens_module.MAX_TOKEN_PAYLOAD - overhead)}}
    assert decode_token(UNSIGNED.new_token("sid", fits))[1]["raw"] == b"\x00" * 30
    over = {**extra, "headers": {"X": "a" * (tokens_module.MAX_TOKEN_PAYLOAD - overhead + 1)}}
    with pytest.raises(tokens_module.TokenTooLarge, match="over the limit of 65536 bytes"):
        UNSIGNED.new_token("sid", over)
