"""MetadataHandler (contract 2.4, 8)."""
from __future__ import annotations

import pytest

from tests.support.http import assert_status, get, request


@pytest.mark.parametrize("key", ["/hello", "/http_dirapp", "/http_raises"])
def test_metadata_default(server, key):
    r = get(server, key + "/metadata")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"url": key, "data": {}}


def test_metadata_exact_body(server):
    assert get(server, "/hello/metadata").text == '{"url": "/hello", "data": {}}'


def test_metadata_trailing_slash_is_404(server):
    assert_status(get(server, "/hello/metadata/"), 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_metadata_rejects_other_methods(server, method):
    assert_status(request(server, method, "/hello/metadata"), 405)
