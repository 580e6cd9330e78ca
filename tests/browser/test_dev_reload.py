"""``bokeh-flask serve app.py --dev`` is a loop that never dies (issue 15 item 2).

A save that breaks the app keeps the server up; the open tab reloads itself into an error
page with the file, line, message and traceback (text only); the terminal shows the error
once; the next good save brings the tab back to the app by itself.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import requests

from tests.support.browser import TIMEOUT_MS, wait_for_log_after, wait_for_model
from tests.support.servers import launch

APP = """from bokeh.io import curdoc
from bokeh.models import Button, Div
div = Div(text="{text}", name="div")
button = Button(label="click", name="button")
button.on_click(lambda: setattr(div, "text", "clicked {text}"))
curdoc().add_root(div)
curdoc().add_root(button)
"""
SYNTAX_ERROR = "from bokeh.io import curdoc\n\nx = (1,\ncurdoc().add_root(None)\n"
RAISES = "from bokeh.io import curdoc\nfrom bokeh.models import Div\nvalue = 1 / 0\n"


def save(path: Path, text: str) -> None:
    """Write ``text`` as an editor saves: a new mtime even within the same second."""
    path.write_text(text)
    stamp = time.time() + 1
    os.utime(path, (stamp, stamp))


def test_a_broken_save_shows_an_error_page_and_a_good_save_brings_the_tab_back(tmp_path, page):
    app = tmp_path / "devapp.py"
    app.write_text(APP.format(text="version 1"))
    server = launch("cli", apps=[app], args=["--dev"], wait_path="/devapp", cwd=tmp_path)
    try:
        page.goto(server.url + "/devapp")
        wait_for_model(page, "div", "v === 'version 1'")

        offset = len(server.log_text())
        save(app, SYNTAX_ERROR)
        page.locator("#where").wait_for(timeout=TIMEOUT_MS)  # the tab reloaded itself
        assert page.locator("#where").inner_text() == f'File "{app}", line 3'
        assert page.locator("#message").inner_text() == "SyntaxError: '(' was never closed"
        assert "x = (1," in page.locator("#traceback").inner_text()
        assert page.locator("script").count() == 1  # the reload poll only: no code runs from it
        log = wait_for_log_after(server, offset, f"could not load app {app}")
        assert log.count(f"could not load app {app}") == 1
        assert server.process.poll() is None

        save(app, RAISES)
        page.wait_for_function("() => document.querySelector('#message') && "
                               "document.querySelector('#message').innerText.includes('ZeroDivisionError')",
                               timeout=TIMEOUT_MS)
        assert page.locator("#where").inner_text() == f'File "{app}", line 3'
        assert "value = 1 / 0" in page.locator("#traceback").inner_text()

        save(app, APP.format(text="version 2"))
        wait_for_model(page, "div", "v === 'version 2'")  # back by itself, no reload by hand
        page.locator(".bk-btn").first.click()
        wait_for_model(page, "div", "v === 'clicked version 2'")
        assert server.process.poll() is None
    finally:
        server.stop()


def test_a_directory_app_with_a_bad_theme_serves_its_error_until_fixed(tmp_path):
    app = tmp_path / "dirapp"
    app.mkdir()
    (app / "main.py").write_text(APP.format(text="themed"))
    (app / "theme.yaml").write_text("attrs:\n  Div:\n    width: 300\n")
    server = launch("cli", apps=[app], args=["--dev"], wait_path="/dirapp", cwd=tmp_path)
    try:
        boot = requests.get(server.url + "/_dev/boot", timeout=10).text
        save(app / "theme.yaml", "attrs:\n  Div: [\n")
        response = _wait_for_status(server.url + "/dirapp", 500)
        assert f'File &#34;{app / "theme.yaml"}&#34;, line 3' in response.text
        assert requests.get(server.url + "/_dev/boot", timeout=10).text != boot
        save(app / "theme.yaml", "attrs:\n  Div:\n    width: 200\n")
        _wait_for_status(server.url + "/dirapp", 200)
    finally:
        server.stop()


def _wait_for_status(url: str, status: int, timeout: float = 20.0) -> requests.Response:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=10)
            if last.status_code == status:
                return last
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status}; last: {last and last.status_code}")
