"""Helpers for the browser tests: a launcher for the ``examples/host_app`` Flask app, waiting
for server log lines, and small Playwright helpers that read Bokeh model state in the page
through ``Bokeh.documents[0]``."""
from __future__ import annotations

import os
import time

from tests.support.servers import BIN, EXAMPLES, ROOT, Server, free_port, spawn

KINDS = ["gunicorn", "flask"]
#: Generous upper bound for anything that needs a server round trip.
TIMEOUT_MS = 15_000


# -- servers ----------------------------------------------------------------------------

def launch_host_app(env: dict | None = None, port: int | None = None,
                    timeout: float = 60.0, kind: str = "gunicorn") -> Server:
    """Run from the repository root as examples/host_app/README.md says: ``gunicorn -k
    gevent -w 1 -b 127.0.0.1:PORT --chdir examples/host_app app:app``, or with ``kind="flask"``
    ``flask --app examples/host_app/app.py run --port PORT`` (the current directory is not
    the app's folder, so its relative app path must resolve against its root_path)."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    full_env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)})
    full_env.update(env or {})
    if kind == "gunicorn":
        command = [str(BIN / "gunicorn"), "-k", "gevent", "-w", "1", "-b", f"127.0.0.1:{port}",
                   "--chdir", str(EXAMPLES / "host_app"), "app:app"]
    else:
        command = [str(BIN / "flask"), "--app", "examples/host_app/app.py", "run",
                   "--host", "127.0.0.1", "--port", str(port)]
    return spawn("host_app", command, port, full_env, ready=lambda status: status == 200,
                 ready_path="/health", timeout=timeout)


def wait_for_log_after(server: Server, offset: int, text: str, timeout: float = 10.0) -> str:
    """Wait until ``text`` appears in the server log *after* character ``offset``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tail = server.log_text()[offset:]
        if text in tail:
            return tail
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in server log after offset {offset}:\n"
                         f"{server.log_text()[offset:][-3000:]}")


# -- page helpers -----------------------------------------------------------------------

def console_errors(page) -> list[str]:
    return [m for m in page.console_messages if m.startswith("error:")]


def assert_no_console_errors(page) -> None:
    errors = console_errors(page)
    if errors:
        print("browser console:\n" + "\n".join(page.console_messages))
    assert not errors, "console errors:\n" + "\n".join(errors)


def wait_for_bokeh(page, timeout: int = TIMEOUT_MS) -> None:
    """Wait until BokehJS holds a document (pulled over the websocket) and a canvas shows."""
    page.wait_for_function(
        "() => window.Bokeh !== undefined && Bokeh.documents.length > 0", timeout=timeout)
    page.locator("canvas").first.wait_for(state="visible", timeout=timeout)


_READ = ("const m = Bokeh.documents[0].get_model_by_name(name);"
         " if (m == null) return undefined;"
         " return Function('m', 'return m.' + expr)(m);")


def model_value(page, name: str, expr: str = "text"):
    """``Bokeh.documents[0].get_model_by_name(name).<expr>``, read in the browser."""
    return page.evaluate(f"([name, expr]) => {{ {_READ} }}", [name, expr])


def wait_for_model(page, name: str, predicate_js: str, expr: str = "text",
                   timeout: int = TIMEOUT_MS) -> None:
    """Wait until the JS expression ``predicate_js`` over ``v`` (= ``model.<expr>``) holds."""
    page.wait_for_function(
        "([name, expr, pred]) => { const read = () => {" + _READ + "};"
        " if (!window.Bokeh || Bokeh.documents.length === 0) return false;"
        " const v = read(); if (v === undefined) return false;"
        " return Function('v', 'return (' + pred + ')')(v); }",
        arg=[name, expr, predicate_js], timeout=timeout)


# -- examples/sliders.py ----------------------------------------------------------------

#: The plot's y values, as :func:`wait_for_model`'s ``expr`` on the ``plot`` model.
Y = "renderers[0].data_source.data.y"


def y_values(page) -> list[float]:
    return page.evaluate(
        "Array.from(Bokeh.documents[0].get_model_by_name('plot').renderers[0].data_source.data.y)")


def slider_handle(page, title: str):
    """The drag handle of the slider titled ``title`` (focus it, then press arrow keys)."""
    return page.locator("div.bk-Slider", has=page.locator(".bk-slider-title", has_text=title)) \
               .locator(".noUi-handle")
