"""AutoloadJsHandler (contract 2.3, 7.3): the embed script and its CORS headers."""
from __future__ import annotations

import re

import pytest
from bokeh.util.token import get_session_id, get_token_payload

from tests.support.bokeh_version import bokeh3_only
from tests.support.http import assert_status, get, page_token, request

FOREIGN = "http://embedder.test:8000"

#: Bokeh 4 has no autoload.js: tests/http/test_http_embed_json.py checks its embed.json.
pytestmark = bokeh3_only


def allowed_origin(server) -> str:
    """The default allowlist is ``localhost:<port>`` (as bokeh serve's)."""
    return f"http://localhost:{server.port}"


def assert_grant(r, origin: str) -> None:
    assert r.headers.get("Access-Control-Allow-Origin") == origin
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "Origin" in r.headers.get("Vary", "")


def assert_no_grant(r) -> None:
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert "Origin" in r.headers.get("Vary", "")


def _js_urls(script: str) -> list[str]:
    m = re.search(r"const js_urls = \[(.*?)\];", script, re.S)
    assert m, "no js_urls in the autoload script"
    return re.findall(r'"([^"]+)"', m.group(1))


@pytest.mark.parametrize("query", ["", "?bokeh-autoload-element=", "?bokeh-autoload-element=%20"])
def test_missing_element_is_400_with_cors_headers(server, query):
    r = get(server, "/hello/autoload.js" + query, headers={"Origin": allowed_origin(server)})
    assert_status(r, 400)
    assert_grant(r, allowed_origin(server))


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
    assert "arguments" not in get_token_payload(token)  # kept on the server: the token stays small


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


@pytest.mark.parametrize("cookies", [{}, {"session": "login"}])
def test_no_cors_grant_for_an_origin_that_may_not_open_the_websocket(server, cookies):
    """The token in the script (and, with cookies, a login) is not for other sites."""
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=e", headers={"Origin": FOREIGN},
            cookies=cookies)
    assert r.status_code == 200
    assert_no_grant(r)


@pytest.mark.parametrize("cookies", [{}, {"sid": "1"}])
def test_cors_grant_for_an_allowed_origin(server, cookies):
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=e",
            headers={"Origin": allowed_origin(server)}, cookies=cookies)
    assert r.status_code == 200
    assert_grant(r, allowed_origin(server))


def test_cors_grant_for_the_servers_own_origin(server):
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=e", headers={"Origin": server.url})
    assert_grant(r, server.url)


def test_no_origin_no_cors_headers(server):
    r = get(server, "/hello/autoload.js?bokeh-autoload-element=e")
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers


def test_options_preflight_of_an_allowed_origin(server):
    r = request(server, "OPTIONS", "/hello/autoload.js",
                headers={"Origin": allowed_origin(server), "Access-Control-Request-Method": "GET",
                         "Access-Control-Request-Headers": "bokeh-session-id"})
    assert r.status_code == 200, r.text[:300]
    assert "GET" in r.headers.get("Access-Control-Allow-Methods", "")
    assert r.headers.get("Access-Control-Allow-Headers") == "bokeh-session-id"
    assert_grant(r, allowed_origin(server))
    assert "Traceback" not in r.text


def test_options_preflight_of_a_foreign_origin(server):
    r = request(server, "OPTIONS", "/hello/autoload.js",
                headers={"Origin": FOREIGN, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 200
    assert_no_grant(r)
    assert "Access-Control-Allow-Methods" not in r.headers


def test_options_preflight_without_origin(server):
    r = request(server, "OPTIONS", "/hello/autoload.js")
    assert r.status_code == 200, r.text[:300]
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Traceback" not in r.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_autoload_rejects_other_methods(server, method):
    assert_status(request(server, method, "/hello/autoload.js?bokeh-autoload-element=e"), 405)
