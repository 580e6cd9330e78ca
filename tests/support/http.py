"""Small helpers shared by the HTTP view tests (plain functions, no fixtures)."""
from __future__ import annotations

import http.client
import re
import time

import requests

TIMEOUT = 15

#: The signing key every signed server in this folder uses.
SECRET_KEY = "http-tests-secret-key-0123456789abcdefghijkl"
#: Distinct bytes so a test can tell the custom favicon from Bokeh's.
CUSTOM_ICO = b"\x00\x00\x01\x00custom-ico-for-http-tests"

_TOKEN = re.compile(r'"token":"([A-Za-z0-9_\-.]+)"')
_SCRIPT_SRC = re.compile(r'<script[^>]*\ssrc="([^"]+)"')


def get(server, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("allow_redirects", False)
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.get(server.url + path, **kwargs)


def request(server, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("allow_redirects", False)
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.request(method, server.url + path, **kwargs)


def raw_request(server, method: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Send ``path`` byte for byte (requests/urllib3 would normalise ``..`` segments)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def page_token(text: str) -> str:
    """The session token in a doc page's or autoload script's render items."""
    tokens = _TOKEN.findall(text)
    assert len(tokens) == 1, f"expected exactly one token in the page, found {len(tokens)}"
    return tokens[0]


def script_srcs(html: str) -> list[str]:
    return _SCRIPT_SRC.findall(html)


def assert_status(response: requests.Response, status: int | tuple[int, ...]) -> None:
    """The expected status and no traceback (the body's shape is checked in test_http_errors)."""
    expected = (status,) if isinstance(status, int) else status
    assert response.status_code in expected, (
        f"{response.request.method} {response.request.url} -> {response.status_code}, "
        f"expected {expected}: {response.text[:300]!r}"
    )
    assert "Traceback" not in response.text, response.text


def assert_plain_error(response: requests.Response, status: int | tuple[int, ...]) -> None:
    """An error answer: the expected status, a short text/plain body, never a traceback/HTML page."""
    expected = (status,) if isinstance(status, int) else status
    assert response.status_code in expected, (response.status_code, response.text[:500])
    body = response.text
    assert "Traceback" not in body, body
    assert response.headers.get("Content-Type", "").startswith("text/plain"), (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"Content-Type {response.headers.get('Content-Type')!r}, body {body[:200]!r}"
    )
    assert "<html" not in body.lower(), body[:300]
    assert len(body) < 300, body[:500]


def count_in_log(server, text: str) -> int:
    return server.log_text().count(text)


def wait_for_count(server, text: str, at_least: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_in_log(server, text) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged {at_least} times:\n{server.log_text()[-3000:]}")
