"""Panel apps served by ``bokeh-flask serve`` and driven in chromium: ``pn.bind`` and a
``pn.pane.Bokeh`` figure redrawn from a widget, async callbacks and a periodic one, a
template with a Tabulator whose selection and edits reach Python, and ``pn.state.onload``
and ``pn.state.on_session_destroyed``. Every file each page loads, Panel's JavaScript, CSS
and templates' files included, must come from our server: the one exception, Google's
Open Sans stylesheet that Panel's Fast design links (Panel ships no copy of it; ``panel
serve`` links it too), is answered in the browser with an empty stylesheet, so no request
leaves the machine whatever the network."""
from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support.browser import assert_no_console_errors
from tests.support.servers import IN_CI, Server

APPS = Path(__file__).resolve().parent / "apps"
PANEL_APPS = [APPS / "panel_app.py", APPS / "panel_async.py", APPS / "panel_template.py"]
#: Sessions left by a closed page are discarded within 2.25 s (the lifecycle test waits for it).
LIFETIME_ARGS = ["--unused-session-lifetime", "2000", "--check-unused-sessions", "250"]
#: The stylesheet Panel's Fast design (FastListTemplate) links from Google Fonts.
FAST_FONT = "https://fonts.googleapis.com/css?family=Open+Sans"

if importlib.util.find_spec("panel") is None:
    if IN_CI:
        pytest.fail("Panel is missing: it belongs to the test extra", pytrace=False)
    pytest.skip("Panel is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def lifecycle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where panel_async.py's ``on_session_destroyed`` callback writes."""
    path = tmp_path_factory.mktemp("panel") / "destroyed.txt"
    path.touch()
    return path


@pytest.fixture(scope="module")
def panel_server(lifecycle_file: Path) -> Iterator[Server]:
    """One server for every Panel app of this module, under a prefix (Panel's files must
    follow it) and with a short unused-session lifetime."""
    from tests.support.servers import launch

    server = launch("cli", apps=PANEL_APPS, args=["--prefix", "/pre", *LIFETIME_ARGS],
                    env={"PANEL_LIFECYCLE_FILE": str(lifecycle_file)}, wait_path="/pre/panel_app")
    yield server
    server.stop()


def record_requests(page) -> list[str]:
    """Every URL the page requests from now on, routed ones and websockets included."""
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("websocket", lambda ws: requested.append(ws.url))
    return requested


def foreign(requested: list[str]) -> set[str]:
    """The requested URLs whose host is not this machine."""
    return {u for u in requested if urlsplit(u).scheme in ("http", "https", "ws", "wss")
            and urlsplit(u).hostname not in ("127.0.0.1", "localhost")}


def wait_for_lines(path: Path, line: str, count: int, timeout: float = 15.0) -> None:
    """Wait until ``path`` (written by the app's process) holds ``line`` ``count`` times."""
    deadline = time.monotonic() + timeout
    while path.read_text().splitlines().count(line) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{line!r} not {count} times in {path}:\n{path.read_text()}")
        time.sleep(0.05)


def test_panel_app_renders_and_round_trips_through_python(panel_server, page):
    requested = record_requests(page)
    page.goto(panel_server.url + "/pre/panel_app")
    page.get_by_text("points = 3").wait_for()
    page.locator("canvas").first.wait_for(state="visible")  # the pn.pane.Bokeh figure drew

    handle = page.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.get_by_text("points = 5").wait_for()  # pn.bind ran describe() in Python
    # the watcher redrew the figure inside pn.pane.Bokeh
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('source').data.x.length === 5")

    assert not foreign(requested), f"requests left the machine: {sorted(foreign(requested))}"
    assert any("/pre/static/extensions/panel/" in u and u.split("?")[0].endswith(".js") for u in requested)
    assert any("/pre/static/extensions/panel/" in u and ".css" in u for u in requested)
    assert_no_console_errors(page)


def test_panel_async_callbacks_onload_and_session_destroyed(panel_server, page, lifecycle_file):
    requested = record_requests(page)
    page.goto(panel_server.url + "/pre/panel_async")
    page.get_by_text("square = 4").wait_for()  # the async pn.bind function was awaited
    # the onload callback wrote its session's id into the page, once the page had loaded
    loaded = page.get_by_text(re.compile(r"^loaded: [\w-]{20,}$"))
    loaded.wait_for()
    sid = loaded.inner_text().removeprefix("loaded: ")
    panel_server.wait_for_log(f"app /panel_async, session {sid[:8]}")  # the page's own session
    handle = page.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.get_by_text("square = 9").wait_for()
    # the async periodic callback keeps counting (30 runs, every 100 ms)
    page.wait_for_function("() => [...Bokeh.documents[0].all_models].some("
                           "m => /<b>ticks<\\/b>: ([5-9]|[1-3][0-9])$/.test(m.text || ''))")
    assert not foreign(requested), f"requests left the machine: {sorted(foreign(requested))}"
    assert_no_console_errors(page)

    line = f"destroyed {sid}"
    assert line not in lifecycle_file.read_text().splitlines()
    page.close()
    wait_for_lines(lifecycle_file, line, 1)  # the server discarded the unused session
    assert not re.search(r"Traceback|on_session_destroyed callback .* failed", panel_server.log_text())


def test_panel_fast_template_tabulator_selection_and_edit_reach_python(panel_server, page):
    requested = record_requests(page)
    page.route(re.compile("^" + re.escape(FAST_FONT)),
               lambda route: route.fulfill(status=200, content_type="text/css", body=""))
    page.goto(f"{panel_server.url}/pre/panel_template?template=fast")
    rows = page.locator(".tabulator-row")
    rows.filter(has_text="Quito").wait_for()
    assert rows.count() == 3

    page.locator(".tabulator-cell[tabulator-field='city']", has_text="Oslo").click()
    page.get_by_text("picked: Oslo").wait_for()  # the selection reached Python

    page.locator(".tabulator-row", has_text="Lisbon").locator(
        ".tabulator-cell[tabulator-field='population']").click()
    editor = page.locator(".tabulator-cell[tabulator-field='population'] input")
    editor.fill("600")
    editor.press("Enter")
    page.get_by_text("edited: Lisbon population = 600").wait_for()  # on_edit ran in Python

    assert foreign(requested) == {FAST_FONT}, sorted(foreign(requested))
    assert any("/pre/static/extensions/panel/bundled/datatabulator/" in u and ".css" in u for u in requested)
    assert "Traceback" not in panel_server.log_text()
    assert_no_console_errors(page)


def test_panel_bootstrap_template_gets_its_design_files_from_our_server(panel_server, page):
    """Panel's bundle for the page: without its design's bootstrap.bundle.min.js (Bokeh's
    bundle lacks it) the page fails with 'bootstrap is not defined'. No exception here: the
    Bootstrap design links no web font."""
    requested = record_requests(page)
    page.goto(f"{panel_server.url}/pre/panel_template?template=bootstrap")
    page.locator(".tabulator-cell[tabulator-field='city']", has_text="Oslo").click()
    page.get_by_text("picked: Oslo").wait_for()

    assert not foreign(requested), f"requests left the machine: {sorted(foreign(requested))}"
    assert any("/pre/static/extensions/panel/bundled/bootstrap5/" in u and u.split("?")[0].endswith(".js")
               for u in requested), requested
    assert_no_console_errors(page)
