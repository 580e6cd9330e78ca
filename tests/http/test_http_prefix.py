"""Every route under the prefix (contract 1.1, 1.2, 7.4), except the favicon."""
from __future__ import annotations

import hashlib
import re

import pytest
from bokeh.util.token import get_session_id

from tests.support.bokeh_version import bokeh3_only, bokeh4_only, embed_path
from tests.support.http import assert_status, get, page_token, script_srcs


@pytest.fixture(scope="module")
def pre(configured):
    return configured("prefix")


@pytest.mark.parametrize("path", ["/pre/hello", "/pre/hello/", "/pre/http_dirapp"])
def test_doc_pages_under_prefix(pre, path):
    r = get(pre, path)
    assert r.status_code == 200
    assert get_session_id(page_token(r.text))


@pytest.mark.parametrize("path", ["/hello", "/hello/metadata", embed_path("/hello"),
                                  "/static/js/bokeh.min.js", "/http_dirapp/static/hello.txt",
                                  "/pre/favicon.ico"])
def test_unprefixed_routes_are_404(pre, path):
    assert_status(get(pre, path), 404)


def test_page_static_urls_under_prefix(pre):
    srcs = script_srcs(get(pre, "/pre/hello").text)
    assert srcs
    for src in srcs:
        m = re.match(r"^/pre/static/js/[\w.\-]+\.js\?v=([0-9a-f]{128})$", src)
        assert m, src
        r = get(pre, src)
        assert r.status_code == 200, src
        assert hashlib.sha512(r.content).hexdigest() == m.group(1)


def test_metadata_under_prefix_reports_unprefixed_key(pre):
    r = get(pre, "/pre/hello/metadata")
    assert r.status_code == 200
    assert r.json() == {"url": "/hello", "data": {}}


@bokeh3_only
def test_autoload_under_prefix(pre):
    r = get(pre, "/pre/hello/autoload.js?bokeh-autoload-element=el1&bokeh-app-path=/pre/hello")
    assert r.status_code == 200
    assert '"/pre/static/js/bokeh.min.js?v=' in r.text
    assert '"/static/js/' not in r.text
    abs_r = get(pre, "/pre/hello/autoload.js?bokeh-autoload-element=el1"
                     "&bokeh-absolute-url=http://example.test:8080/pre/hello")
    assert '"http://example.test:8080/pre/static/js/bokeh.min.js?v=' in abs_r.text


@bokeh4_only
def test_embed_json_under_prefix(pre):
    """BokehJS 4 loads extension assets from the body's ``root_url``: the prefix."""
    r = get(pre, "/pre/hello/embed.json")
    assert r.status_code == 200, r.text[:300]
    assert r.json()["resources"]["root_url"] == "/pre"


def test_app_static_under_prefix(pre):
    r = get(pre, "/pre/http_dirapp/static/hello.txt")
    assert r.status_code == 200
    assert r.text == "hello from http_dirapp static\n"


def test_favicon_stays_at_origin_root(pre):
    r = get(pre, "/favicon.ico")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/x-icon"
