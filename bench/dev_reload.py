"""``--dev``: from a save to the open tab showing the new code, ``bokeh-flask serve --dev``
against ``bokeh serve --dev``, in Debian's chromium, in one run.

.. code-block:: bash

    .venv-3.12/bin/python bench/dev_reload.py --out bench/results/<date>-dev-reload.md   # ~2 minutes

Each server serves a copy of a one-Div app (``version <n>`` in a Div named ``v``) from a
directory of its own. Chromium opens the app; then, ``--saves`` times, the script rewrites
the file with the next version and measures the time until the tab's document shows it
(polled every 20 ms through ``Bokeh.documents``), whatever way the server brings it there
(bokeh-flask: a rolling reload and the page's boot-id poll; bokeh serve: its process
restart and BokehJS' reconnect). The servers take turns save by save. Every server's log
is kept and scanned for warnings and tracebacks.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
APP = '''from bokeh.io import curdoc
from bokeh.models import Div

curdoc().add_root(Div(name="v", text="version {n}"))
'''
READ = ("() => { const d = window.Bokeh && Bokeh.documents[0]; const m = d && d.get_model_by_name('v');"
        " return m ? m.text : null; }")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.app = workdir / "app.py"
        self.app.write_text(APP.format(n=0))
        self.port = free_port()
        self.log = workdir / "server.log"
        command = ([str(BIN / "bokeh-flask"), "serve", str(self.app), "--dev", "--port", str(self.port)]
                   if kind == "bokeh-flask" else
                   [str(BIN / "bokeh"), "serve", str(self.app), "--dev", "--port", str(self.port)])
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOKEH_")}
        self.process = subprocess.Popen(command, cwd=workdir, env=env, stdout=self.log.open("wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://localhost:{self.port}/app"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def problems(self) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if "Traceback" in line or "Warning" in line or "WARNING" in line or "peer stopped" in line]


def wait_text(page, expected: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if page.evaluate(READ) == expected:
                return time.monotonic() - started
        except Exception:  # the page is reloading
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{expected!r} not shown within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=8, help="saves per server (default 8)")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="bench-dev-reload-"))
    servers = {kind: Server(kind, workdir / kind) for kind in ("bokeh-flask", "bokeh serve")
               if (workdir / kind).mkdir() is None}
    times: dict[str, list[float]] = {kind: [] for kind in servers}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            pages = {}
            for kind, server in servers.items():
                deadline = time.monotonic() + 60
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                page = browser.new_context().new_page()
                page.goto(server.url)
                wait_text(page, "version 0", 30)
                pages[kind] = page
            for n in range(1, args.saves + 1):
                for kind, server in servers.items():
                    pages[kind].bring_to_front()
                    time.sleep(1.5)  # let the previous restart settle: a save is a user's, not a burst
                    server.app.write_text(APP.format(n=n))
                    times[kind].append(wait_text(pages[kind], f"version {n}", 30))
            browser.close()
    finally:
        for server in servers.values():
            server.stop()
    lines = [f"# --dev: save to the new code in the open tab ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"`bench/dev_reload.py --saves {args.saves}`, chromium {CHROMIUM}, one app of one Div, "
             "servers taking turns save by save; seconds from the file's rewrite to the tab's document "
             "showing the new text.", "",
             "| server | median | min | max | all |", "|---|---|---|---|---|"]
    for kind, values in times.items():
        lines.append(f"| {kind} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | "
                     + ", ".join(f"{v:.2f}" for v in values) + " |")
    ratio = statistics.median(times["bokeh-flask"]) / statistics.median(times["bokeh serve"])
    lines += ["", f"Ratio of medians (bokeh-flask / bokeh serve): {ratio:.2f}x", ""]
    for kind, server in servers.items():
        found = server.problems()
        lines.append(f"- {kind} log: {len(found)} warning or traceback lines"
                     + (": " + "; ".join(found[:5]) if found else ""))
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
