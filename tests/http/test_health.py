"""``<prefix>/healthz`` and ``<prefix>/readyz`` (issue 17 item 1): plain-text probes that need
no login, stay off the index page, follow a host app's url_prefix, and report an app that
failed to load (``--dev``) or a draining worker as not ready."""
from __future__ import annotations

import os
import time

import pytest

from tests.support.auth import BOKEH_EXAMPLE_AUTH, COOKIE_SECRET, LOGIN_SERVER, WHOAMI, launch_flask_app
from tests.support.http import get, request
from tests.support.servers import APPS, EXAMPLES, launch

SYNTAX_ERROR = "from bokeh.io import curdoc\n\nx = (1,\ncurdoc().add_root(None)\n"


def assert_probes_ok(server, prefix: str = "") -> None:
    for path in ("/healthz", "/readyz"):
        response = get(server, prefix + path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        assert response.text == "ok\n"
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers


def test_probes_answer_ok_and_stay_off_the_index(server):
    assert_probes_ok(server)
    assert request(server, "HEAD", "/healthz").status_code == 200
    index = get(server, "/")
    assert index.status_code == 200
    assert "healthz" not in index.text and "readyz" not in index.text and "metrics" not in index.text


def test_probes_need_no_login_with_an_auth_module():
    server = launch("cli", apps=[WHOAMI], args=[
        "--auth-module", str(BOKEH_EXAMPLE_AUTH), "--enable-xsrf-cookies", "--cookie-secret", COOKIE_SECRET])
    try:
        assert get(server, "/whoami").status_code == 302  # the app itself still wants a login
        assert_probes_ok(server)
    finally:
        server.stop()


def test_probes_under_a_host_apps_url_prefix_with_its_own_login():
    server = launch_flask_app(LOGIN_SERVER, "gunicorn",
                              env={"AUTH_TEST_URL_PREFIX": "/mnt", "AUTH_TEST_PREFIX": "/pre"})
    try:
        assert get(server, "/mnt/pre/whoami").status_code == 302
        assert_probes_ok(server, "/mnt/pre")
        assert get(server, "/healthz").status_code == 404  # only under the prefix
    finally:
        server.stop()


def test_probes_in_a_host_app_with_flask_login_hooks():
    server = launch_flask_app(EXAMPLES / "auth" / "host_app.py", "gunicorn",
                              env={"SECRET_KEY": "host-secret-" + "y" * 20})
    try:
        assert_probes_ok(server, "/bokeh")
    finally:
        server.stop()


def test_readyz_is_503_while_a_dev_app_fails_to_load(tmp_path):
    app = tmp_path / "broken.py"
    app.write_text("from bokeh.io import curdoc\n")
    server = launch("cli", apps=[app], args=["--dev"], wait_path="/healthz", cwd=tmp_path)
    try:
        assert get(server, "/readyz").status_code == 200
        app.write_text(SYNTAX_ERROR)  # a save that breaks it: the worker restarts, the server stays
        stamp = time.time() + 1
        os.utime(app, (stamp, stamp))
        deadline = time.monotonic() + 30
        # the old worker answers "draining" while the new one loads the broken save
        while "failed to load" not in (response := get(server, "/readyz")).text and time.monotonic() < deadline:
            time.sleep(0.2)
        assert get(server, "/healthz").text == "ok\n"
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.text == "app /broken failed to load (see the server log)\n"
    finally:
        server.stop()


def test_not_ready_while_draining():
    """The core behind /readyz: ready once started, not ready once stop() begins draining."""
    from bokeh_flask.app.config.settings import build_settings
    from bokeh_flask.app.sessions.server import ServerCore

    core = ServerCore(build_settings(environ={}), apps=[str(APPS / "hello.py")])
    assert core.not_ready() == "starting: on_server_loaded hooks are running"
    core.ensure_started()
    assert core.not_ready() is None
    core.stop()
    assert core.draining
    assert core.not_ready() == "draining: the worker is shutting down"


@pytest.mark.parametrize("key", ["/healthz", "/readyz"])
def test_an_app_key_that_would_hide_a_probe_is_refused(key):
    from flask import Flask

    from bokeh_flask.app.config.settings import SettingsError, build_settings
    from bokeh_flask.app.sessions.server import ServerCore
    from bokeh_flask.blueprints.routes import register_routes

    core = ServerCore(build_settings(environ={}), apps={key: str(APPS / "hello.py")})
    with pytest.raises(SettingsError, match=f"app {key} would hide the server's {key} route"):
        register_routes(Flask(__name__, static_folder=None), core, "", "bokeh")
