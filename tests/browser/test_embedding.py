"""examples/host_app/app.py: an existing Flask app embedding Bokeh apps with
``server_document``, run under gunicorn's gevent worker (and ``flask run``) as its README says.

``/``       embeds sliders mounted in the same Flask app at /bokeh/sliders;
``/remote`` embeds sliders from a separate bokeh-flask server, which must allow the host
page's origin for the websocket (and refuses it otherwise).

The host pages are built with the installed Bokeh's ``server_document()``: under Bokeh 3 it
loads ``<app>/autoload.js``, under Bokeh 4 BokehJS fetches ``<app>/embed.json`` (after a CORS
preflight, cross-origin) and opens the websocket with the token it returns.
"""
from __future__ import annotations

import pytest

from tests.support.bokeh_version import EMBED_ROUTE
from tests.support.browser import assert_no_console_errors, launch_host_app, model_value, wait_for_bokeh, wait_for_model
from tests.support.servers import EXAMPLES, free_port, launch

SLIDERS = EXAMPLES / "sliders.py"
HOST_APP = EXAMPLES / "host_app" / "app.py"


@pytest.fixture(scope="module")
def host_and_remote():
    """A standalone server for sliders that allows the host's origin, and the host app."""
    if not HOST_APP.exists():
        pytest.fail(f"{HOST_APP} is missing")
    host_port = free_port()
    remote = launch("gunicorn", apps=[SLIDERS],
                    env={"BOKEH_ALLOW_WS_ORIGIN": f"127.0.0.1:{host_port}"})
    try:
        host = launch_host_app(port=host_port, env={"BOKEH_REMOTE_URL": remote.url + "/sliders"})
    except Exception:
        remote.stop()
        raise
    yield host, remote
    host.stop()
    remote.stop()


def move_amplitude_and_expect_python(page) -> None:
    assert model_value(page, "status") == "ready"
    page.locator("div.bk-Slider", has=page.locator(".bk-slider-title", has_text="amplitude")) \
        .locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    # written only by the Python callback
    wait_for_model(page, "status", "v === 'amplitude=1.2 offset=0 phase=0 freq=1'")
    wait_for_model(page, "plot", "Math.abs(Math.max(...v) - 1.2) < 0.01",
                   expr="renderers[0].data_source.data.y")


def test_same_process_embed(host_and_remote, page):
    host, _ = host_and_remote
    page.goto(host.url + "/")
    assert page.locator("h1#host-heading").inner_text() == "My Flask site"
    wait_for_bokeh(page)
    # the Bokeh roots are rendered into the host page's own container
    assert page.locator("#bokeh-app canvas").first.is_visible()
    move_amplitude_and_expect_python(page)
    assert_no_console_errors(page)


def test_same_process_embed_under_flask_run_from_repository_root(start_host_app, page):
    host = start_host_app(kind="flask")
    page.goto(host.url + "/")
    wait_for_bokeh(page)
    move_amplitude_and_expect_python(page)
    assert_no_console_errors(page)


def test_cross_origin_embed_with_allowed_origin(host_and_remote, page):
    host, remote = host_and_remote
    offset = len(remote.log_text())
    with page.expect_response(lambda r: r.url.startswith(f"{remote.url}/sliders/{EMBED_ROUTE}")
                              and r.request.method == "GET") as embed:
        page.goto(host.url + "/remote")
    # the embed (and its session token) comes from the remote server, not the host
    assert embed.value.ok
    assert page.locator("h1#host-heading").inner_text() == "My Flask site: remote app"
    wait_for_bokeh(page)
    assert page.locator("#bokeh-app canvas").first.is_visible()
    move_amplitude_and_expect_python(page)
    assert_no_console_errors(page)
    assert "Refusing websocket" not in remote.log_text()[offset:]


def test_cross_origin_embed_refused_without_allowed_origin(start_server, start_host_app, page):
    remote = start_server("gunicorn", apps=[SLIDERS])  # default allowlist: localhost:<port>
    host = start_host_app(env={"BOKEH_REMOTE_URL": remote.url + "/sliders"})
    origin = f"http://127.0.0.1:{host.port}"

    with page.expect_console_message(lambda m: m.type == "error", timeout=15_000) as message:
        page.goto(host.url + "/remote")
    print("browser console:\n" + "\n".join(page.console_messages))
    text = message.value.text
    # the embed (and its session token) is not granted to an origin that may not open the
    # websocket: the browser stops at autoload.js or embed.json, before any websocket
    assert EMBED_ROUTE in text and "blocked by CORS policy" in text, text
    assert f"from origin '{origin}'" in text, text
    assert "Refusing websocket" not in remote.log_text()
    # no document ever arrives, so nothing renders and no Python answer is possible
    assert page.evaluate("() => window.Bokeh === undefined || Bokeh.documents.length === 0")
    assert page.locator("#bokeh-app canvas").count() == 0
