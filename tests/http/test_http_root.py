"""RootHandler (contract 2.5, 8): redirect, listing, disabled index, custom index templates."""
from __future__ import annotations

import re

from tests.support.http import assert_status, get


def _links(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def test_root_redirects_to_the_only_app(configured):
    s = configured("single")
    for path in ("/", "/?foo=bar"):
        r = get(s, path)
        assert r.status_code == 302, (path, r.status_code)
        # relative Location, the query string dropped
        assert r.headers["Location"] == "/hello", r.headers["Location"]


def test_root_lists_every_app_when_several(server):
    for path in ("/", ""):
        r = get(server, path or "/")
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/html")
        links = _links(r.text)
        assert {"/hello", "/http_raises", "/http_dirapp"} <= set(links), links
        assert ">hello<" in r.text


def test_root_listing_links_carry_the_prefix(configured):
    s = configured("prefix")
    for path in ("/pre", "/pre/"):
        r = get(s, path)
        assert r.status_code == 200, (path, r.status_code)
        links = _links(r.text)
        assert {"/pre/hello", "/pre/http_dirapp"} <= set(links), links
        assert "/hello" not in links


def test_disable_index_gives_404_but_apps_still_served(configured):
    s = configured("no_index")
    assert_status(get(s, "/"), 404)
    assert get(s, "/hello").status_code == 200


def test_disable_index_redirect_lists_the_single_app(configured):
    s = configured("no_redirect")
    r = get(s, "/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "/hello" in _links(r.text)


def test_custom_index_template_jinja2(configured):
    r = get(configured("index_jinja"), "/")
    assert r.status_code == 200, r.text[:500]
    assert "<title>jinja index</title>" in r.text
    assert "prefix=[]" in r.text
    assert 'href="/hello">custom-/hello<' in r.text
    assert 'href="/http_dirapp">custom-/http_dirapp<' in r.text
    # items are sorted
    assert r.text.index("custom-/hello") < r.text.index("custom-/http_dirapp")


def test_custom_index_template_tornado_syntax(configured):
    r = get(configured("index_tornado"), "/")
    assert r.status_code == 200, r.text[:500]
    assert "<title>tornado index</title>" in r.text
    assert "prefix=[]" in r.text
    assert 'href="/hello">tornado-/hello<' in r.text
    assert 'href="/http_dirapp">tornado-/http_dirapp<' in r.text
    assert "{% end %}" not in r.text
