"""bokeh_flask.app.config.origins.OriginAllowlist: the websocket Origin check (contract 4.3)."""
from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bokeh_flask.app.config.origins import OriginAllowlist, served_address
from bokeh_flask.app.config.settings import SettingsError


def allow(*entries, port=5006):
    return OriginAllowlist.parse(list(entries), port)


def test_default_is_localhost_port():
    a = allow()
    assert a.entries == ("localhost:5006",)
    assert a.allows("http://localhost:5006")
    assert not a.allows("http://localhost:5007")
    assert not a.allows("http://localhost")
    assert not a.allows("http://127.0.0.1:5006")
    assert not a.allows("http://example.com")


def test_default_follows_the_served_port_not_the_setting():
    a = allow()
    served = ("127.0.0.1", 8000)
    assert a.allows("http://localhost:8000", served=served)
    assert a.allows("http://127.0.0.1:8000", served=served)
    assert a.allows("https://localhost:8000", served=served)
    assert not a.allows("http://localhost:5006", served=served)
    assert not a.allows("http://127.0.0.1:5006", served=served)
    assert not a.allows("http://127.0.0.2:8000", served=served)
    assert not a.allows("http://localhost.example.com:8000", served=served)
    assert a.allows("http://localhost", served=("127.0.0.1", 80))


def test_default_with_a_non_loopback_or_ipv6_address():
    a = allow()
    assert a.allows("http://10.1.2.3:8000", served=("10.1.2.3", 8000))
    assert a.allows("http://localhost:8000", served=("10.1.2.3", 8000))
    assert not a.allows("http://10.1.2.4:8000", served=("10.1.2.3", 8000))
    assert a.allows("http://[::1]:8000", served=("::1", 8000))
    assert not a.allows("http://[::2]:8000", served=("::1", 8000))


def test_default_never_follows_the_host_header():
    """DNS rebinding: an attacker's name resolving here carries the attacker's Host."""
    a = allow()
    assert not a.allows("http://evil.example:9999", "localhost:8000", served=("127.0.0.1", 8000))
    assert a.allows("http://evil.example:8000", "evil.example:8000", served=("127.0.0.1", 8000))  # same origin


def test_given_entries_ignore_the_served_address():
    a = allow("dash.corp")
    assert not a.allows("http://localhost:8000", served=("127.0.0.1", 8000))
    assert a.allows("http://dash.corp", served=("127.0.0.1", 8000))


def accepted(family: int, bind: str, connect: str) -> tuple[socket.socket, int]:
    """The server side of a real loopback connection, and the port it reached."""
    with socket.socket(family) as listener:
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind((bind, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = socket.create_connection((connect, port))
        conn, _ = listener.accept()
    client.close()
    return conn, port


@pytest.mark.parametrize("key", ["gunicorn.socket", "gunicorn.sock", "werkzeug.socket"])
def test_served_address_of_a_tcp_connection(key):
    conn, port = accepted(socket.AF_INET, "127.0.0.1", "127.0.0.1")
    with conn:
        assert served_address({key: conn}) == ("127.0.0.1", port)


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_served_address_of_an_ipv4_client_on_a_dual_stack_socket():
    try:
        conn, port = accepted(socket.AF_INET6, "::", "127.0.0.1")
    except OSError as exc:
        pytest.skip(f"no dual-stack socket here: {exc}")
    with conn:
        assert conn.getsockname()[0] == "::ffff:127.0.0.1"
        assert served_address({"gunicorn.socket": conn}) == ("127.0.0.1", port)


def test_served_address_of_a_unix_closed_or_missing_socket():
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert served_address({"gunicorn.socket": left}) is None
    assert served_address({"gunicorn.socket": left}) is None  # closed: getsockname fails
    assert served_address({}) is None


def test_given_entries_replace_default():
    a = allow("example.com:80")
    assert not a.allows("http://localhost:5006")


@pytest.mark.parametrize("origin", [None, ""])
def test_no_origin_is_allowed(origin):
    assert allow("example.com").allows(origin)  # non-browser clients send none


def test_origin_equal_to_host_is_allowed():
    a = allow()
    assert a.allows("http://127.0.0.1:5006", "127.0.0.1:5006")
    assert a.allows("http://Example.COM", "example.com")
    assert a.allows("http://example.com", "example.com:80")
    assert a.allows("https://example.com", "example.com")
    assert not a.allows("http://example.com:8080", "example.com")
    assert not a.allows("http://evil.com", "example.com")
    assert not a.allows("http://127.0.0.1:5007", "127.0.0.1:5006")


def test_star_allows_everything():
    a = allow("*")
    for origin in ["http://a.com", "https://x.y.z:1234", "http://127.0.0.1:9", "http://localhost"]:
        assert a.allows(origin)


def test_wildcard_label():
    a = allow("*.foo.com:80")
    assert a.allows("http://a.foo.com:80")
    assert a.allows("http://a.foo.com")
    assert a.allows("http://B.Foo.Com")
    assert not a.allows("http://a.b.foo.com:80")
    assert not a.allows("http://foo.com:80")
    assert not a.allows("http://a.foo.com:81")
    assert not a.allows("http://a.foo.org:80")
    assert not a.allows("http://a.foo.com.evil.net:80")


def test_wildcard_inner_labels_and_port():
    a = allow("192.168.*.*:*")
    assert a.allows("http://192.168.1.2:1")
    assert a.allows("https://192.168.10.20")
    assert not a.allows("http://192.169.1.2:1")
    assert not a.allows("http://192.168.1:1")


def test_star_host_with_port():
    a = allow("*:8080")
    assert a.allows("http://anything.example:8080")
    assert not a.allows("http://anything.example:8081")


@pytest.mark.parametrize("origin", [
    "http://dashboard.corp.attacker.com",
    "http://evil-dashboard.corp",
    "http://dashboard.corpx",
    "http://xdashboard.corp",
    "http://dashboard.corp.",
    "http://sub.dashboard.corp",
    "http://dashboard.corp@attacker.com",
    "http://attacker.com/dashboard.corp",
    "http://attacker.com?dashboard.corp",
    "http://attacker.com#dashboard.corp",
    "http://dashboard-corp",
    "http://dashboardXcorp",
])
def test_exact_labels_never_admit_lookalikes(origin):
    assert not allow("dashboard.corp").allows(origin)
    assert not allow("dashboard.corp:*").allows(origin)


def test_exact_label_admits_itself():
    assert allow("dashboard.corp").allows("http://dashboard.corp")
    assert allow("dashboard.corp").allows("http://user:pw@dashboard.corp")


def test_case_insensitive_both_ways():
    a = allow("DashBoard.Corp:8080")
    assert a.allows("http://dashboard.corp:8080")
    assert a.allows("HTTP://DASHBOARD.CORP:8080")
    assert not a.allows("http://dashboard.corp:8081")


def test_entry_without_port_means_scheme_default():
    a = allow("a.com")
    assert a.allows("http://a.com")
    assert a.allows("http://a.com:80")
    assert a.allows("https://a.com")
    assert a.allows("https://a.com:443")
    assert not a.allows("https://a.com:80")
    assert not a.allows("http://a.com:443")
    assert not a.allows("http://a.com:8080")


def test_explicit_port_must_match():
    a = allow("a.com:80")
    assert a.allows("http://a.com")
    assert not a.allows("https://a.com")  # 443
    assert allow("a.com:443").allows("https://a.com")


def test_port_star():
    a = allow("a.com:*")
    for origin in ["http://a.com", "https://a.com", "http://a.com:1", "http://a.com:65535"]:
        assert a.allows(origin)
    assert not a.allows("http://b.com:1")


def test_entry_with_scheme_and_trailing_slash_tolerated():
    a = allow("http://a.com:8080/")
    assert a.allows("http://a.com:8080")


@pytest.mark.parametrize("entry", ["", ":80", "a:b:c", "host:abc", "host:8o", "a..b", ".a.com",
                                   "a.com.", "http://x/y", "a/b"])
def test_malformed_entries_raise_settings_error(entry):
    with pytest.raises(SettingsError, match="allow-websocket-origin"):
        allow(entry)


@pytest.mark.parametrize("origin", [
    "null", "garbage", "http://", "http://[::1", "http://a:99999", "http://a:-1",
    "http://a:80:90", "\x00", "://a.com", "a.com", "localhost:5006", "http://a b.com",
    "http://localhost:5006x", "\udcff", "http://%00",
])
def test_garbage_origins_are_refused_without_exceptions(origin):
    a = allow("a.com:*", "localhost:5006")
    assert a.allows(origin) is False
    assert a.allows(origin, "localhost:5006") is False


@settings(max_examples=1500, deadline=None)
@given(origin=st.text(), host=st.one_of(st.none(), st.text()))
def test_allows_never_raises(origin, host):
    for a in (allow(), allow("*"), allow("*.foo.com:80", "a.com:*", "b.com")):
        assert a.allows(origin, host) in (True, False)


@settings(max_examples=800, deadline=None)
@given(scheme=st.sampled_from(["http", "https", "ws", "wss", "ftp", ""]),
       host=st.from_regex(r"[A-Za-z0-9.\-\[\]:@]{0,30}", fullmatch=True),
       port=st.one_of(st.none(), st.integers(-5, 70000), st.text(max_size=6)))
def test_allows_never_raises_for_url_like_origins(scheme, host, port):
    origin = f"{scheme}://{host}" + ("" if port is None else f":{port}")
    for a in (allow(), allow("*"), allow("*.foo.com:80", "a.com:*")):
        assert a.allows(origin, host) in (True, False)
