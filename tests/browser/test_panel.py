"""A Panel app served by ``bokeh-flask serve``: it renders, its widget round-trips through
Python (``pn.bind`` and a watcher redrawing a Bokeh figure), and every file it loads, Panel's
own JavaScript and CSS included, comes from our server."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.browser import assert_no_console_errors
from tests.support.servers import IN_CI

APPS = Path(__file__).resolve().parent / "apps"
APP = APPS / "panel_app.py"

if importlib.util.find_spec("panel") is None:
    if IN_CI:
        pytest.fail("Panel is missing: it belongs to the test extra", pytrace=False)
    pytest.skip("Panel is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def panel_server():
    from tests.support.servers import launch

    server = launch("cli", apps=[APP, APPS / "panel_async.py"], args=["--prefix", "/pre"],
                    wait_path="/pre/panel_app")
    yield server
    server.stop()


def test_panel_app_renders_and_round_trips_through_python(panel_server, page):
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(panel_server.url + "/pre/panel_app")
    page.get_by_text("points = 3").wait_for()

    handle = page.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.get_by_text("points = 5").wait_for()  # pn.bind ran describe() in Python
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('source').data.x.length === 5")

    foreign = sorted({u for u in requested if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                      and urlsplit(u).hostname not in ("127.0.0.1", "localhost")})
    assert not foreign, f"requests left the machine: {foreign}"
    assert any("/pre/static/extensions/panel/" in u and u.split("?")[0].endswith(".js") for u in requested)
    assert any("/pre/static/extensions/panel/" in u and ".css" in u for u in requested)
    assert_no_console_errors(page)


def test_panel_async_bind_and_async_periodic_callback(panel_server, page):
    page.goto(panel_server.url + "/pre/panel_async")
    page.get_by_text("square = 4").wait_for()  # the async pn.bind function was awaited
    handle = page.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.get_by_text("square = 9").wait_for()
    # the async periodic callback keeps counting (30 runs, every 100 ms)
    page.wait_for_function("() => [...Bokeh.documents[0].all_models].some("
                           "m => /<b>ticks<\\/b>: ([5-9]|[1-3][0-9])$/.test(m.text || ''))")
    assert "Traceback" not in panel_server.log_text()
    assert_no_console_errors(page)
