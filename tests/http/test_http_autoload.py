"""AutoloadJsHandler (contract 2.3, 7.3): the embed script and its CORS headers."""
from __future__ import annotations

import re

import pytest
from bokeh.util.token import get_session_id, get_token_payload

from http_helpers import assert_status, get, page_token, request

CORS_DEFAULTS = {
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Allow-Credentials": "true",
}


def _js_urls(script: str) -> list[str]:
    m = re.search(r"const js_urls = \[(.*?)\];", script, re.S)
    assert m, "no js_urls in the autoload script"
    return re.findall(r'"([^"]+)"', m.group(1))


@pytest.mark.parametrize("query", ["", "?bokeh-autoload-element=", "?bokeh-autoload-element=%20"])
def test_missing_element_is_400_with_cors_headers(server, query):
    r = get(server, "/hello/autoload.js" + query)
    assert_status(r, 400)
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    for name, value in CORS_DEFAULTS.items():
        assert r.headers.get(name) == value, name


def test_autoload_script(server):
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=el-4242&bokeh-app-path=/hello&foo=bar")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/javascript")
    body = r.text
    assert 'document.getElementById("el-4242")' in body
    assert '"elementid":"el-4242"' in body
    assert "embed_items(docs_json, render_items, \"/hello\")" in body
    urls = _js_urls(body)
    assert urls and all(u.startswith("/static/js/") for u in urls), urls
    token = page_token(body)
    assert len(get_session_id(token)) == 44
    assert get_token_payload(token)["arguments"]["foo"] == [b"bar"]


def test_autoload_default_app_path_is_root(server):
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=e1")
    assert 'embed_items(docs_json, render_items, "/")' in r.text


def test_autoload_absolute_urls(server):
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=e2&bokeh-app-path=/hello"
                    "&bokeh-absolute-url=http://myhost:9999/hello")
    assert r.status_code == 200
    urls = _js_urls(r.text)
    assert urls and all(u.startswith("http://myhost:9999/static/js/") for u in urls), urls
    assert 'render_items, "/hello", "http://myhost:9999/hello")' in r.text


def test_autoload_resources_none_has_no_js_urls(server):
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=e3&resources=none")
    assert r.status_code == 200
    assert _js_urls(r.text) == []
    assert "/static/js/" not in r.text


def test_cors_wildcard_without_cookies(server):
    for headers in ({}, {"Origin": "http://embedder.test"}):
        r = get(server, "/hello/autoload.js?bokeh-autoload-element=e", headers=headers)
        assert r.status_code == 200
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        for name, value in CORS_DEFAULTS.items():
            assert r.headers.get(name) == value, name


def test_cors_literal_origin_with_cookies(server):
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=e",
            headers={"Origin": "http://embedder.test:8000"}, cookies={"sid": "1"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "http://embedder.test:8000"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"


def test_options_preflight_with_origin(server):
    r = request(server, "OPTIONS", "/hello/autoload.js",
                headers={"Origin": "http://embedder.test", "Access-Control-Request-Method": "GET",
                         "Access-Control-Request-Headers": "bokeh-session-id"})
    assert r.status_code == 200, r.text[:300]
    assert "GET" in r.headers.get("Access-Control-Allow-Methods", "")
    assert r.headers.get("Access-Control-Allow-Origin") == "http://embedder.test"
    assert "Traceback" not in r.text


def test_options_preflight_without_origin(server):
    r = request(server, "OPTIONS", "/hello/autoload.js")
    assert r.status_code == 200, r.text[:300]
    assert "GET" in r.headers.get("Access-Control-Allow-Methods", "")
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    assert "Traceback" not in r.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_autoload_rejects_other_methods(server, method):
    assert_status(request(server, method, "/hello/autoload.js?bokeh-autoload-element=e"), 405)
