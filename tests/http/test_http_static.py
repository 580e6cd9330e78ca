"""Static files (contract 2.6, 2.7): BokehJS, per-app static/, path safety, favicon."""
from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import bokeh
import pytest
from bokeh.settings import settings as bokeh_settings

from tests.support.http import CUSTOM_ICO, assert_status, get, raw_request, request
from tests.support.servers import APPS

BOKEHJS = Path(bokeh_settings.bokehjs_path())
BOKEH_MIN = BOKEHJS / "js" / "bokeh.min.js"
BOKEH_ICO = Path(bokeh.__file__).parent / "server" / "views" / "bokeh.ico"
DIRAPP_TXT = APPS / "http_dirapp" / "static" / "hello.txt"
WSGI_PY = (APPS.parent.parent / "wsgi.py").read_bytes()
DIRAPP_MAIN = (APPS / "http_dirapp" / "main.py").read_bytes()
IDENTITY = {"Accept-Encoding": "identity"}


def _max_age(response) -> int:
    m = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    return int(m.group(1)) if m else 0


def test_bokehjs_file(server):
    r = get(server, "/static/js/bokeh.min.js", headers=IDENTITY)
    assert r.status_code == 200
    assert "javascript" in r.headers["Content-Type"]
    assert r.content == BOKEH_MIN.read_bytes()
    assert r.headers.get("ETag"), "no ETag"


def test_etag_revalidation_304(server):
    etag = get(server, "/static/js/bokeh.min.js", headers=IDENTITY).headers["ETag"]
    r = get(server, "/static/js/bokeh.min.js", headers={**IDENTITY, "If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    r = get(server, "/static/js/bokeh.min.js", headers={**IDENTITY, "If-None-Match": '"other"'})
    assert r.status_code == 200


def test_versioned_url_cached_long(server):
    r = get(server, "/static/js/bokeh.min.js?v=whatever", headers=IDENTITY)
    assert r.status_code == 200
    assert _max_age(r) >= 365 * 24 * 3600, r.headers.get("Cache-Control")


def test_unversioned_url_not_cached_long(server):
    r = get(server, "/static/js/bokeh.min.js", headers=IDENTITY)
    assert r.status_code == 200
    assert _max_age(r) < 24 * 3600, r.headers.get("Cache-Control")
    assert "immutable" not in r.headers.get("Cache-Control", "")


def test_head(server):
    full = get(server, "/static/js/bokeh.min.js", headers=IDENTITY)
    r = request(server, "HEAD", "/static/js/bokeh.min.js", headers=IDENTITY)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["ETag"] == full.headers["ETag"]
    assert "javascript" in r.headers["Content-Type"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_static_rejects_other_methods(server, method):
    assert_status(request(server, method, "/static/js/bokeh.min.js"), 405)


def test_gzip_when_accepted(server):
    r = get(server, "/static/js/bokeh.min.js", headers={"Accept-Encoding": "gzip"}, stream=True)
    assert r.status_code == 200
    assert r.headers.get("Content-Encoding") == "gzip"
    raw = r.raw.read(decode_content=False)
    assert len(raw) < BOKEH_MIN.stat().st_size
    assert gzip.decompress(raw) == BOKEH_MIN.read_bytes()


def test_brotli_preferred_when_accepted(server):
    brotli = pytest.importorskip("brotli")  # in the test extra, so present under make test
    r = get(server, "/static/js/bokeh.min.js", headers={"Accept-Encoding": "gzip, deflate, br"}, stream=True)
    assert r.status_code == 200
    assert r.headers.get("Content-Encoding") == "br"
    assert r.headers.get("Vary") == "Accept-Encoding"
    raw = r.raw.read(decode_content=False)
    assert brotli.decompress(raw) == BOKEH_MIN.read_bytes()
    gzipped = get(server, "/static/js/bokeh.min.js", headers={"Accept-Encoding": "gzip"}, stream=True)
    assert len(raw) < len(gzipped.raw.read(decode_content=False))


def test_brotli_best_quality_replaces_the_fast_one(server):
    """The first answer is brotli's fast quality; the best one (computed off the event
    loop) is served once ready, and both decode to the same file."""
    brotli = pytest.importorskip("brotli")
    path, accept = "/static/js/bokeh-widgets.min.js", {"Accept-Encoding": "br"}
    original = (BOKEHJS / "js" / "bokeh-widgets.min.js").read_bytes()

    def body() -> bytes:
        r = get(server, path, headers=accept, stream=True)
        assert r.headers.get("Content-Encoding") == "br"
        raw = r.raw.read(decode_content=False)
        assert brotli.decompress(raw) == original
        return raw

    sizes = {len(body())}
    deadline = time.monotonic() + 60  # about 0.5 s of compression in a worker thread
    while len(sizes) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        sizes.add(len(body()))
    assert len(sizes) == 2 and len(brotli.compress(original, quality=11)) == min(sizes)


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0, br;q=0", "deflate", ""])
def test_refused_or_unknown_codings_get_the_plain_file(server, accept):
    r = get(server, "/static/js/bokeh.min.js", headers={"Accept-Encoding": accept}, stream=True)
    assert r.headers.get("Content-Encoding") in (None, "identity")
    assert r.raw.read(decode_content=False) == BOKEH_MIN.read_bytes()


def test_no_gzip_when_not_accepted(server):
    r = get(server, "/static/js/bokeh.min.js", headers=IDENTITY, stream=True)
    assert "Content-Encoding" not in r.headers or r.headers["Content-Encoding"] == "identity"
    assert r.raw.read(decode_content=False) == BOKEH_MIN.read_bytes()


@pytest.mark.parametrize("path", ["/static/js/", "/static/js", "/static/", "/static/js/lib",
                                  "/hello/static/js/", "/http_dirapp/static/"])
def test_directory_is_403_or_404(server, path):
    assert_status(get(server, path), (403, 404))


def test_missing_file_is_404(server):
    assert_status(get(server, "/static/js/no-such-file.js"), 404)


TRAVERSALS = [
    "/static/../wsgi.py",
    "/static/js/../../../../../../../../etc/passwd",
    "/static/..%2fwsgi.py",
    "/static/%2e%2e/wsgi.py",
    "/static/%2e%2e%2fwsgi.py",
    "/static/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/static/%252e%252e%252fwsgi.py",
    "/static/%252e%252e/%252e%252e/wsgi.py",
    "/static/..%5cwsgi.py",
    "/static/..\\wsgi.py",
    "/static/js\\..\\..\\wsgi.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static///etc/passwd",
    "/static/js/bokeh.min.js%00.txt",
    "/static/%00/../wsgi.py",
    "/static/..%00/wsgi.py",
    "/static/extensions/../../wsgi.py",
    "/static/extensions/x/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/hello/static/..%2f..%2f..%2fwsgi.py",
    "/http_dirapp/static/../main.py",
    "/http_dirapp/static/..%2fmain.py",
    "/http_dirapp/static/%2e%2e/main.py",
    "/http_dirapp/static/..%5cmain.py",
    "/http_dirapp/static//etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_never_leaves_the_root(server, path):
    status, headers, body = raw_request(server, "GET", path)
    assert status in (400, 403, 404), (path, status, body[:200])
    assert b"root:" not in body
    assert WSGI_PY not in body and b"monkey.patch_all" not in body
    assert DIRAPP_MAIN not in body
    assert b"Traceback" not in body


def test_app_static_file(server):
    r = get(server, "/http_dirapp/static/hello.txt", headers=IDENTITY)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.content == DIRAPP_TXT.read_bytes()
    assert r.headers.get("ETag")


def test_app_static_missing_is_404(server):
    assert_status(get(server, "/http_dirapp/static/nope.txt"), 404)


def test_script_app_exposes_bokehjs_copy(server):
    r = get(server, "/hello/static/js/bokeh.min.js", headers=IDENTITY)
    assert r.status_code == 200
    assert r.content == BOKEH_MIN.read_bytes()


def test_favicon(server):
    r = get(server, "/favicon.ico")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/x-icon"
    assert r.content == BOKEH_ICO.read_bytes()


def test_favicon_custom_path(configured):
    r = get(configured("single"), "/favicon.ico")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/x-icon"
    assert r.content == CUSTOM_ICO


def test_favicon_none_is_404(configured):
    assert_status(get(configured("no_index"), "/favicon.ico"), 404)
