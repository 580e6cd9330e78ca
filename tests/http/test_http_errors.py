"""Every error answer is a short text/plain body, never an HTML page or a traceback."""
from __future__ import annotations

import pytest

from tests.support.bokeh_version import BOKEH4, embed_path
from tests.support.http import assert_plain_error, request

ERRORS = [
    ("GET", "/HELLO", {}, 404),
    ("GET", "/no-such-app", {}, 404),
    ("GET", "/hello/ws/", {}, 404),
    ("GET", "/hello//", {}, 404),
    ("POST", "/hello", {}, 405),
    ("DELETE", "/hello/", {}, 405),
    ("POST", "/hello/metadata", {}, 405),
    ("POST", embed_path("/hello"), {}, 405),
    ("POST", "/static/js/bokeh.min.js", {}, 405),
    ("POST", "/favicon.ico", {}, 405),
    ("POST", "/", {}, 405),
    ("GET", "/hello?bokeh-session-id=", {}, 400),
    ("GET", "/hello?bokeh-session-id=a", {"Bokeh-Session-Id": "b"}, 403),
    ("GET", "/hello?bokeh-token=not-a-token&bokeh-session-id=a", {}, 403),
    ("GET", "/hello/autoload.js", {}, 404 if BOKEH4 else 400),  # Bokeh 3: no element id
    ("GET", "/static/js/missing.js", {}, 404),
    ("GET", "/static/js/", {}, (403, 404)),
    ("GET", "/http_dirapp/static/missing.txt", {}, 404),
    ("GET", "/static/extensions/nope/file.js", {}, 404),
]


@pytest.mark.parametrize("method,path,headers,status", ERRORS,
                         ids=[f"{m}-{p}" for m, p, _, _ in ERRORS])
def test_error_is_short_plain_text(server, method, path, headers, status):
    assert_plain_error(request(server, method, path, headers=headers), status)


def test_websocket_path_without_upgrade_is_4xx_plain(server):
    r = request(server, "GET", "/hello/ws")
    assert 400 <= r.status_code < 500
    assert "Traceback" not in r.text
    assert "<html" not in r.text.lower()


CONFIGURED_ERRORS = [
    ("no_index", "/", 404),
    ("no_index", "/favicon.ico", 404),
    ("prefix", "/hello", 404),
    ("prefix", "/pre/favicon.ico", 404),
    ("prefix", "/pre/hello?bokeh-session-id=", 400),
    ("signed", "/hello?bokeh-session-id=not-signed", 403),
    ("external", "/hello", 403),
]


@pytest.mark.parametrize("name,path,status", CONFIGURED_ERRORS,
                         ids=[f"{n}-{p}" for n, p, _ in CONFIGURED_ERRORS])
def test_error_is_short_plain_text_configured(configured, name, path, status):
    assert_plain_error(request(configured(name), "GET", path), status)
