"""The default allowed origin follows the address actually served (issue 21, item 6).

With no ``--allow-websocket-origin``, ``bokeh serve`` allows ``localhost:<its port>``. A host
app under ``gunicorn -b :8000`` used to allow ``localhost:5006`` (the ``port`` setting's
default): another server's pages could open its websockets and read its autoload scripts,
and its own origin was refused. Now the default is ``localhost:<the port the connection
reached>`` and that local ``IP:port``, under gunicorn (any ``-b``, several too), ``flask run``
and ``bokeh-flask serve``. Each server here is started with the ``port`` setting left at
5006 (except ``bokeh-flask serve --port N``, where the two agree) and driven with real
clients: the handshake's ``Host`` is ``localhost:<port>``, so the same-origin rule does not
decide for the IP literal.
"""
from __future__ import annotations

import os
from typing import Iterator

import pytest
import requests
import websocket

from tests.support.bokeh_version import BOKEH4, embed_path
from tests.support.servers import APPS, BIN, EXAMPLES, Server, free_port, launch, spawn
from tests.support.wire import NODELAY, TIMEOUT, page_token

HELLO = APPS / "hello.py"
FOREIGN = "http://localhost:5006"
#: launch() sets the port setting to the served port for gunicorn and flask: put it back
PORT_SETTING_5006 = {"BOKEH_DEFAULT_SERVER_PORT": "5006"}


def ws_status(server: Server, app_path: str, token: str, origin: str, port: int | None = None) -> int:
    """The handshake's status (101: upgraded) for ``origin``, sent to ``port`` (the server's)."""
    port = port or server.port
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}{app_path}/ws", subprotocols=["bokeh", token],
                                         origin=origin, host=f"localhost:{port}", timeout=TIMEOUT,
                                         sockopt=NODELAY)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    ws.close()
    return 101


def autoload_grant(server: Server, app_path: str, origin: str) -> str | None:
    """The CORS grant autoload.js (Bokeh 4: embed.json, which refuses a foreign origin) gives."""
    response = requests.get(server.url + embed_path(app_path), timeout=TIMEOUT,
                            headers={"Origin": origin, "Host": f"localhost:{server.port}"})
    assert response.status_code == (403 if BOKEH4 and origin == FOREIGN else 200), response.text[:300]
    return response.headers.get("Access-Control-Allow-Origin")


def check_default_origins(server: Server, app_path: str, port: int | None = None) -> None:
    port = port or server.port
    token = page_token(f"http://127.0.0.1:{port}", app_path.strip("/"))
    for own in (f"http://localhost:{port}", f"http://127.0.0.1:{port}"):
        assert ws_status(server, app_path, token, own, port) == 101, own
    assert ws_status(server, app_path, token, FOREIGN, port) == 403
    assert ws_status(server, app_path, token, f"http://127.0.0.2:{port}", port) == 403
    server.wait_for_log(f"Refusing websocket connection from Origin '{FOREIGN}'")
    if port == server.port:
        assert autoload_grant(server, app_path, f"http://localhost:{port}") == f"http://localhost:{port}"
        assert autoload_grant(server, app_path, FOREIGN) is None


@pytest.fixture
def host_app() -> Iterator[Server]:
    """examples/host_app (sliders mounted at /bokeh/sliders) as its docstring runs it, on a
    port other than 5006, with the port setting at its default."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    command = [str(BIN / "gunicorn"), "-k", "gevent", "-w", "1", "-b", f"127.0.0.1:{port}",
               "--chdir", str(EXAMPLES / "host_app"), "app:app"]
    server = spawn("host-app", command, port, {**env, "PYTHONUNBUFFERED": "1"},
                   ready=lambda status: status == 200, ready_path="/health")
    yield server
    server.stop()


def test_host_app_under_gunicorn_b_allows_its_own_origin_not_5006(host_app):
    assert host_app.port != 5006
    check_default_origins(host_app, "/bokeh/sliders")


def test_gunicorn_with_two_binds_allows_each_bound_port():
    second = free_port()
    server = launch("gunicorn", apps=[HELLO], env=PORT_SETTING_5006,
                    args=["-b", f"127.0.0.1:{second}"])
    try:
        check_default_origins(server, "/hello")
        check_default_origins(server, "/hello", port=second)
    finally:
        server.stop()


def test_flask_run_allows_its_own_origin_not_5006():
    server = launch("flask", apps=[HELLO], env=PORT_SETTING_5006)
    try:
        check_default_origins(server, "/hello")
    finally:
        server.stop()


def test_bokeh_flask_serve_port_allows_its_own_origin_not_5006():
    server = launch("cli", apps=[HELLO])
    try:
        check_default_origins(server, "/hello")
    finally:
        server.stop()


def test_given_origins_replace_the_default():
    server = launch("cli", apps=[HELLO], args=["--allow-websocket-origin", "dash.corp:80"])
    try:
        token = page_token(server.url)
        assert ws_status(server, "/hello", token, "http://dash.corp") == 101
        assert ws_status(server, "/hello", token, f"http://127.0.0.1:{server.port}") == 403
        assert ws_status(server, "/hello", token, f"http://localhost:{server.port}") == 101  # its Host
    finally:
        server.stop()
