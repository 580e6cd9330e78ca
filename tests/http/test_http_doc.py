"""DocHandler (contract 2.1, 2.2, 3.4, 7.1): the app page, its resources and its token."""
from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest
from bokeh.util.token import get_session_id, get_token_payload

from tests.support.bokeh_version import BOKEH4
from tests.support.http import assert_status, count_in_log, get, page_token, request, script_srcs, wait_for_count
from tests.support.servers import APPS, launch
from tests.support.wire import BokehWS, model_by_name

_VERSIONED = re.compile(r"^/static/js/([A-Za-z0-9_.\-]+\.js)\?v=([0-9a-f]{128})$")


@pytest.mark.parametrize("path", ["/hello", "/hello/"])
def test_doc_page_served_with_and_without_slash(server, path):
    r = get(server, path)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    # BokehJS mounts the document: Bokeh 3 from render items in the page, Bokeh 4 from an
    # embed declaration (which fetches embed.json)
    assert ("Bokeh.mount_embed_declaration" if BOKEH4 else "embed_items") in r.text


def test_doc_page_double_slash_is_404(server):
    assert_status(get(server, "/hello//"), 404)


def test_bokehjs_script_tags_versioned_by_sha512(server):
    html = get(server, "/hello").text
    srcs = script_srcs(html)
    names = []
    for src in srcs:
        m = _VERSIONED.match(src)
        assert m, f"unversioned or foreign script URL {src!r}"
        names.append(m.group(1))
        body = get(server, src, headers={"Accept-Encoding": "identity"})
        assert body.status_code == 200, src
        assert hashlib.sha512(body.content).hexdigest() == m.group(2), src
    assert "bokeh.min.js" in names and "bokeh-widgets.min.js" in names, names


@pytest.fixture(scope="module", params=["gunicorn", "flask"])
def facts_server(request):
    """tests/apps/request_facts_app.py, which shows the request its session sees."""
    s = launch(request.param, apps=[APPS / "request_facts_app.py"], wait_path="/request_facts_app")
    try:
        yield s
    finally:
        s.stop()


def test_the_session_sees_the_page_request_which_its_token_does_not_carry(facts_server):
    """Bokeh's tokens carry the page's headers, cookies and arguments; ours keep them on
    the server (tokens stay small) and the session sees the same request."""
    server = facts_server
    r = get(server, "/request_facts_app?foo=bar&foo=baz&blank=", headers={"X-Custom": "abc"},
            cookies={"c1": "v1", "c2": "v2"})
    assert r.status_code == 200
    token = page_token(r.text)
    session_id = get_session_id(token)
    assert len(session_id) == 44 and session_id.isalnum()
    payload = get_token_payload(token)
    assert isinstance(payload["session_expiry"], int)
    assert not {"headers", "cookies", "arguments"} & payload.keys() and len(token) < 1024
    facts = _session_facts(server, token)
    assert facts["headers"]["X-Custom"] == "abc"
    assert facts["headers"]["Host"] == f"127.0.0.1:{server.port}"
    assert facts["headers"]["Cookie"] == "c1=v1; c2=v2"  # rebuilt from the cookies, as Bokeh does
    assert facts["cookies"] == {name: hashlib.sha256(value.encode()).hexdigest()[:12]
                                for name, value in {"c1": "v1", "c2": "v2"}.items()}
    assert facts["arguments"] == {"foo": ["bar", "baz"], "blank": [""]}


def _session_facts(server, token: str) -> dict:
    """What the session built for ``token`` shows of its request (tests/apps/request_facts_app.py)."""
    with BokehWS(f"{server.ws_url}/request_facts_app/ws", token) as ws:
        return json.loads(model_by_name(ws.pull().content["doc"], "facts")["attributes"]["text"])


def test_each_page_load_gets_a_new_session(server):
    a = get_session_id(page_token(get(server, "/hello").text))
    b = get_session_id(page_token(get(server, "/hello").text))
    assert a != b


def test_session_id_argument_is_honoured(facts_server):
    server = facts_server
    sid = f"arg-{uuid.uuid4().hex}"
    r = get(server, f"/request_facts_app?bokeh-session-id={sid}")
    assert r.status_code == 200
    token = page_token(r.text)
    assert get_session_id(token) == sid
    assert "bokeh-session-id" not in _session_facts(server, token)["arguments"]  # as Bokeh's request


def test_session_id_header_is_honoured(server):
    sid = f"hdr-{uuid.uuid4().hex}"
    r = get(server, "/hello", headers={"Bokeh-Session-Id": sid})
    assert r.status_code == 200
    assert get_session_id(page_token(r.text)) == sid


def test_session_id_as_argument_and_header_is_403(server):
    r = get(server, "/hello?bokeh-session-id=one", headers={"Bokeh-Session-Id": "two"})
    assert_status(r, 403)


def test_token_and_session_id_together_is_403(server):
    token = page_token(get(server, "/hello").text)
    assert_status(get(server, f"/hello?bokeh-token={token}&bokeh-session-id=other"), 403)
    assert_status(get(server, f"/hello?bokeh-token={token}",
                           headers={"Bokeh-Session-Id": "other"}), 403)


def test_supplied_token_is_used(server):
    token = page_token(get(server, "/hello").text)
    r = get(server, f"/hello?bokeh-token={token}")
    assert r.status_code == 200
    assert page_token(r.text) == token


def test_empty_session_id_is_400(server):
    assert_status(get(server, "/hello?bokeh-session-id="), 400)


def test_doc_title(server):
    assert "<title>Hello</title>" in get(server, "/hello").text
    assert "<title>Dir App</title>" in get(server, "/http_dirapp").text


def test_app_code_that_raises_still_serves_the_page_and_logs(server):
    marker = "http_raises: deliberate failure in app code"
    before = count_in_log(server, marker)
    r = get(server, "/http_raises")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    page_token(r.text)  # still a usable page with a session token
    wait_for_count(server, marker, before + 1)


def test_routes_are_case_sensitive(server):
    assert_status(get(server, "/HELLO"), 404)
    assert_status(get(server, "/Hello/metadata"), 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_doc_page_rejects_other_methods(server, method):
    assert_status(request(server, method, "/hello"), 405)
