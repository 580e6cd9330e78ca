"""EmbedJsonHandler: Bokeh 4's ``<app>/embed.json`` (where BokehJS 4 gets a session token
before the websocket), checked against Bokeh 4's contract from an embedding page's side and
an attacker's: the body's schema, the headers, the order origin, login, 409, session.

Under Bokeh 3 the route is left out (BokehJS 3 never asks for it; ``autoload.js`` serves
its embeds), and the one test that runs says so.
"""
from __future__ import annotations

from typing import Iterator

import bokeh
import pytest
import requests
from bokeh.util.token import get_session_id

from tests.support.auth import BOKEH_EXAMPLE_AUTH, COOKIE_SECRET, WHOAMI
from tests.support.bokeh_version import BOKEH4, bokeh4_only
from tests.support.http import assert_status, get, request
from tests.support.servers import APPS, Server, launch
from tests.support.wire import BokehWS, page_token

FOREIGN = "http://embedder.test:8000"
HELLO = APPS / "hello.py"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff"}


def allowed(server: Server) -> dict[str, str]:
    return {"Origin": f"http://localhost:{server.port}"}


def assert_uncached(r: requests.Response) -> None:
    for name, value in NO_STORE.items():
        assert r.headers.get(name) == value, (name, r.headers)
    assert "Origin" in r.headers.get("Vary", "")


def assert_no_cors(r: requests.Response) -> None:
    assert not [name for name in r.headers if name.lower().startswith("access-control-")], r.headers


@pytest.mark.skipif(BOKEH4, reason="Bokeh 3 only: the route Bokeh 4 replaces")
def test_bokeh3_has_autoload_and_no_embed_json(server):
    assert get(server, "/hello/autoload.js?bokeh-autoload-element=x").status_code == 200
    assert_status(get(server, "/hello/embed.json", headers=allowed(server)), 404)


@bokeh4_only
def test_bokeh4_has_embed_json_and_no_autoload(server):
    assert_status(get(server, "/hello/autoload.js?bokeh-autoload-element=x"), 404)


@bokeh4_only
def test_body_and_headers_and_the_token_opens_the_websocket(server):
    r = get(server, "/hello/embed.json", headers=allowed(server))
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("application/json")
    assert_uncached(r)
    assert r.headers["Access-Control-Allow-Origin"] == allowed(server)["Origin"]
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    body = r.json()
    assert set(body) == {"schema", "bokeh_version", "token", "requires", "resources"}
    assert body["schema"] == "bokeh.embed-server/v1" and body["bokeh_version"] == bokeh.__version__
    assert body["resources"]["mode"] == "resolved" and body["resources"]["root_url"] == "/"
    assert isinstance(body["resources"]["assets"], list) and isinstance(body["requires"], dict)
    with BokehWS(f"{server.ws_url}/hello/ws", body["token"], origin=allowed(server)["Origin"]) as ws:
        assert ws.pull().content["doc"]["roots"]


@bokeh4_only
def test_the_app_pages_token_names_the_pages_session(server):
    """Bokeh 4's own app page mounts through embed.json with its token in ``Bokeh-Token``."""
    token = page_token(server.url, "hello")
    r = get(server, "/hello/embed.json", headers={**allowed(server), "Bokeh-Token": token})
    assert r.status_code == 200, r.text[:300]
    assert get_session_id(r.json()["token"]) == get_session_id(token)


@bokeh4_only
@pytest.mark.parametrize("cookies", [{}, {"session": "login"}])
def test_a_foreign_origin_gets_403_and_no_cors_headers(server, cookies):
    for method in ("GET", "OPTIONS"):
        r = request(server, method, "/hello/embed.json", cookies=cookies,
                    headers={"Origin": FOREIGN, "Access-Control-Request-Method": "GET"})
        assert_status(r, 403)
        assert_no_cors(r)
        assert "token" not in r.text and "Traceback" not in r.text


@bokeh4_only
@pytest.mark.parametrize("headers, query", [
    ({"Bokeh-Token": "not-a-token"}, ""),
    ({"Bokeh-Token": "eyJzZXNzaW9uX2lkIjoiIn0.e30.x"}, ""),
    ({}, "?bokeh-token=whatever"),
    ({"Bokeh-Token": "x", "Bokeh-Session-Id": "y"}, ""),
    ({"Bokeh-Session-Id": "abc"}, "?bokeh-session-id=def"),
], ids=["garbage-token", "forged-token", "token-in-query", "token-and-id", "id-twice"])
def test_bad_token_or_session_id_is_403(server, headers, query):
    r = get(server, "/hello/embed.json" + query, headers={**allowed(server), **headers})
    assert_status(r, 403)
    assert_uncached(r)
    assert "Traceback" not in r.text


@bokeh4_only
def test_options_echoes_the_requested_headers(server):
    asked = "bokeh-resource-mode, bokeh-token"
    r = request(server, "OPTIONS", "/hello/embed.json",
                headers={**allowed(server), "Access-Control-Request-Method": "GET",
                         "Access-Control-Request-Headers": asked})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Access-Control-Allow-Headers"] == asked
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Origin"] == allowed(server)["Origin"]
    assert_uncached(r)


@bokeh4_only
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_405(server, method):
    assert_status(request(server, method, "/hello/embed.json", headers=allowed(server)), 405)


@pytest.fixture(scope="module")
def one_session_server() -> Iterator[Server]:
    """A server that holds one live session at most: the second session answers 503, so
    whether a refused request made one shows from the outside."""
    server = launch("cli", apps=[HELLO], args=["--max-sessions", "1", "--unused-session-lifetime", "60000"],
                    wait_path="/healthz")
    yield server
    server.stop()


@bokeh4_only
def test_a_resource_conflict_is_409_with_a_reason_and_makes_no_session(one_session_server):
    server = one_session_server
    conflicts = [({"Bokeh-Resource-Mode": "bogus"}, "unknown server extension resource mode 'bogus'"),
                 ({"Bokeh-Resource-Minified": "true"}, "Bokeh-Resource-Minified requires Bokeh-Resource-Mode"),
                 ({"Bokeh-Resource-Mode": "cdn", "Bokeh-Resource-Minified": "maybe"},
                  "Bokeh-Resource-Minified must be 'true' or 'false'")]
    for headers, reason in conflicts:
        r = get(server, "/hello/embed.json", headers={**allowed(server), **headers})
        assert_status(r, 409)
        assert r.headers["Content-Type"].startswith("text/plain") and reason in r.text, r.text
        assert_uncached(r)
    # a foreign origin made none either: the one session the server holds is still free
    assert_status(get(server, "/hello/embed.json", headers={"Origin": FOREIGN}), 403)
    assert get(server, "/hello/embed.json", headers={**allowed(server), "Bokeh-Resource-Mode": "server"}
               ).status_code == 200
    assert_status(get(server, "/hello/embed.json", headers=allowed(server)), 503)


@bokeh4_only
def test_origin_is_checked_before_login_and_login_before_the_session():
    server = launch("cli", apps=[WHOAMI], args=["--auth-module", str(BOKEH_EXAMPLE_AUTH),
                                                "--cookie-secret", COOKIE_SECRET])
    try:
        # a foreign page learns nothing of the login: 403, not the login redirect
        foreign = get(server, "/whoami/embed.json", headers={"Origin": FOREIGN}, allow_redirects=False)
        assert_status(foreign, 403)
        assert_no_cors(foreign)
        anonymous = get(server, "/whoami/embed.json", headers=allowed(server), allow_redirects=False)
        assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
        assert "token" not in anonymous.text
    finally:
        server.stop()
