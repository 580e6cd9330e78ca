"""bokeh_flask.app.sessions.requests: the Tornado-shaped request view and the session request proxy."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bokeh_flask.app.sessions.requests import RequestInfo, RequestProxy, last_argument, parse_arguments


def environ(**extra):
    env = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/app1/", "QUERY_STRING": "",
        "SERVER_NAME": "localhost", "SERVER_PORT": "5006", "REMOTE_ADDR": "10.1.2.3",
        "wsgi.url_scheme": "http", "HTTP_HOST": "localhost:5006",
    }
    env.update(extra)
    return env


def test_from_environ_basics():
    r = RequestInfo.from_environ(environ(
        QUERY_STRING="foo=bar&foo=baz", HTTP_USER_AGENT="UA", HTTP_X_CUSTOM_THING="abc",
        HTTP_ACCEPT_LANGUAGE="en", CONTENT_TYPE="text/plain", CONTENT_LENGTH="3",
        HTTP_COOKIE="c1=v1; c2=v2", SCRIPT_NAME="/pre", REQUEST_METHOD="POST",
        **{"wsgi.url_scheme": "https"}))
    assert r.method == "POST"
    assert r.path == "/pre/app1/"
    assert r.query == "foo=bar&foo=baz"
    assert r.uri == "/pre/app1/?foo=bar&foo=baz"
    assert r.headers == {"Host": "localhost:5006", "User-Agent": "UA", "X-Custom-Thing": "abc",
                         "Accept-Language": "en", "Content-Type": "text/plain", "Content-Length": "3",
                         "Cookie": "c1=v1; c2=v2"}
    assert r.host == "localhost:5006"
    assert r.remote_ip == "10.1.2.3"
    assert r.protocol == "https"
    assert r.full_url == "https://localhost:5006/pre/app1/?foo=bar&foo=baz"
    assert r.cookies == {"c1": "v1", "c2": "v2"}
    assert r.arguments == {"foo": [b"bar", b"baz"]}


def test_headers_title_cased():
    r = RequestInfo.from_environ({"HTTP_BOKEH_SESSION_ID": "x", "HTTP_X_REQUESTED_WITH": "y",
                                  "HTTP_DNT": "1", "HTTP_SEC_WEBSOCKET_PROTOCOL": "bokeh"})
    assert set(r.headers) == {"Bokeh-Session-Id", "X-Requested-With", "Dnt", "Sec-Websocket-Protocol"}


def test_empty_environ():
    r = RequestInfo.from_environ({})
    assert (r.method, r.path, r.query, r.uri) == ("GET", "/", "", "/")
    assert r.headers == {} and r.cookies == {} and r.arguments == {}


def test_uri_without_query():
    assert RequestInfo.from_environ(environ()).uri == "/app1/"


@pytest.mark.parametrize("query,expected", [
    ("a=&b", {"a": [b""], "b": [b""]}),
    ("a=1&a=&a=2", {"a": [b"1", b"", b"2"]}),
    ("x=a+b&y=%2B%26%3D", {"x": [b"a b"], "y": [b"+&="]}),
    ("bokeh-session-id=s&bokeh-token=t", {"bokeh-session-id": [b"s"], "bokeh-token": [b"t"]}),
    ("", {}),
    ("&&", {}),
])
def test_arguments_keep_blanks_and_repeats(query, expected):
    assert parse_arguments(query) == expected
    assert RequestInfo.from_environ(environ(QUERY_STRING=query)).arguments == expected


@pytest.mark.parametrize("query,expected", [
    ("q=%C3%A9", {"q": [b"\xc3\xa9"]}),   # percent-encoded UTF-8: raw bytes, as Tornado
    ("q=%FF%00", {"q": [b"\xff\x00"]}),   # not UTF-8 at all
    ("q=\xc3\xa9", {"q": [b"\xc3\xa9"]}),  # raw bytes in a WSGI (latin-1) QUERY_STRING
    ("%C3%A9=1", {"\u00e9": [b"1"]}),
])
def test_non_ascii_arguments_are_bytes(query, expected):
    assert parse_arguments(query) == expected


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=255)))
def test_parse_arguments_never_raises(query):
    args = parse_arguments(query)
    for name, values in args.items():
        assert isinstance(name, str)
        assert all(isinstance(v, bytes) for v in values)


def test_last_argument():
    args = {"a": [b"first", b"  last \t"], "c": [b"a\x00b\x1fc\x7fd"], "e": [], "u": [b"\xc3\xa9\xff"],
            "n": [b"x\ny\tz"]}
    assert last_argument(args, "a") == "last"
    assert last_argument(args, "c") == "a b c d"
    assert last_argument(args, "e") is None
    assert last_argument(args, "missing") is None
    assert last_argument(args, "u") == "\u00e9\ufffd"
    assert last_argument(args, "n") == "x y z"
    assert last_argument({"b": [b""]}, "b") == ""


def test_proxy_prefers_payload_values():
    live = RequestInfo.from_environ(environ(QUERY_STRING="live=1", HTTP_X_LIVE="1", HTTP_COOKIE="lc=1"))
    payload = {"headers": {"X-Page": "p"}, "cookies": {"c1": "v1", "c2": "v2"},
               "arguments": {"page": [b"1"], "bokeh-session-id": [b"sid"], "bokeh-app-path": [b"/x"]}}
    p = RequestProxy(live, payload)
    assert p.arguments == {"page": [b"1"], "bokeh-app-path": [b"/x"]}
    assert p.cookies == {"c1": "v1", "c2": "v2"}
    assert p.headers == {"X-Page": "p", "Cookie": "c1=v1; c2=v2"}
    # everything else comes from the live request
    assert p.path == "/app1/" and p.remote_ip == "10.1.2.3" and p.uri == "/app1/?live=1"
    assert p.host == "localhost:5006"


def test_proxy_keeps_existing_cookie_header():
    p = RequestProxy(None, {"headers": {"Cookie": "orig=1"}, "cookies": {"c": "v"}})
    assert p.headers["Cookie"] == "orig=1"


def test_proxy_no_cookie_header_without_cookies_or_headers():
    assert "Cookie" not in RequestProxy(None, {"headers": {"A": "b"}, "cookies": {}}).headers
    p = RequestProxy(None, {"cookies": {"c": "v"}})  # no headers in payload: live ones, untouched
    assert p.headers == {} and p.cookies == {"c": "v"}


def test_proxy_falls_back_to_live_request():
    live = RequestInfo.from_environ(environ(QUERY_STRING="a=1&bokeh-session-id=x", HTTP_X_LIVE="1",
                                            HTTP_COOKIE="lc=1"))
    p = RequestProxy(live, {"session_expiry": 1})
    assert p.arguments == {"a": [b"1"]}
    assert p.cookies == {"lc": "1"}
    assert p.headers["X-Live"] == "1"


def test_proxy_copies_do_not_alias_payload():
    payload = {"arguments": {"a": [b"1"]}, "headers": {"H": "1"}, "cookies": {}}
    p = RequestProxy(None, payload)
    p.arguments["a"].append(b"2")
    p.headers["X"] = "y"
    assert payload == {"arguments": {"a": [b"1"]}, "headers": {"H": "1"}, "cookies": {}}


def test_proxy_without_request():
    p = RequestProxy(None, {})
    assert p.arguments == {} and p.headers == {} and p.cookies == {}
    assert p.uri == "/" and p.protocol == "http"
    with pytest.raises(AttributeError):
        p.no_such_attribute
