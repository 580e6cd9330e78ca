"""Rolling code reload (``kill -HUP`` of the gunicorn master) under page load, with open
browser tabs: issue 17 item 3's measurement.

.. code-block:: bash

    .venv-3.12/bin/python bench/rolling_reload.py --out bench/results/<date>-rolling-reload.md   # ~5 minutes
    .venv-3.12/bin/python bench/rolling_reload.py --repeats 1 --tabs 6                          # a smaller run

Two variants, each run ``--repeats`` times, alternating (A B A B ...), each run on a fresh
server and a fresh chromium:

- ``bokeh-flask``: ``bokeh-flask serve tests/browser/apps/reconnect_counter.py --workers 2`` (our
  worker class, ``app/process/worker.py``: drains on SIGTERM, closes websockets with 1001);
- ``gunicorn -k gevent``: ``gunicorn -c gunicorn.conf.py -k gevent -w 2 wsgi:app`` with
  ``BOKEH_APPS`` set: the same app and settings, gunicorn's own gevent worker.

One run: start the server; one chromium (``/usr/bin/chromium``), one context, ``--tabs``
pages, each loads the counter app and clicks ``add`` once (count 1, checked in the page's
Bokeh document). Then ``--concurrency`` threads GET the app page (``requests.get``, a new
connection each) back to back; once ``--warm-requests`` have succeeded, ``kill -HUP`` the
master. For each tab:

- (a) websocket close: the first Playwright ``page.on("websocket")`` -> ``ws.on("close")``
  event after the HUP for the socket opened before it, timed in this process (the main
  thread stays inside Playwright calls all along, so events are dispatched as they come).
  A script injected in every page also records each ``WebSocket``'s close code and time
  (``Date.now()``), as a cross-check and for the code (1001 = the server said "going away";
  1006 = the connection just died).
- (b) interactive again: a poller in the page (every 10 ms) notices the ``pid`` Div change
  (a new worker rebuilt the session from the token: BokehJS replaced the document), clicks the
  button (a DOM click on the ``<button>`` in Bokeh's shadow DOM, re-clicked at most every
  500 ms if the document's count is still 0), and records ``Date.now()`` when ``count`` reads
  ``1`` (the Python callback ran on the new worker and its patch arrived). Afterwards this
  process checks every tab's count and pid with Playwright.

The page load goes on until every tab is back (or ``--timeout`` after the HUP) plus 2 s;
requests that are not 200 or raise count as failed. All times are seconds after the HUP
(``time.time()`` here, ``Date.now()`` in the page: the same clock).

Bounded: ``--timeout`` (60 s) per reload, 120 s to set up the tabs, the server's process group
killed in ``finally``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent  # the virtualenv running the bench (make builds .venv-<python>)
sys.path.insert(0, str(BENCH))

from run import machine_info  # noqa: E402
from servers import children, free_port  # noqa: E402

APP = BENCH.parent / "tests" / "browser" / "apps" / "reconnect_counter.py"
APP_NAME = "reconnect_counter"
CHROMIUM = "/usr/bin/chromium"
VARIANTS = ("bokeh-flask", "gunicorn-gevent")
LABEL = {"bokeh-flask": "bokeh-flask serve (BokehGeventWorker)",
         "gunicorn-gevent": "gunicorn -k gevent (gunicorn's GeventWorker)"}

#: Injected before any page script: every WebSocket's close (code, reason, time) in window.__rrWs.
WS_RECORDER = """
(() => {
  const Native = window.WebSocket;
  window.__rrWs = [];
  class Recorded extends Native {
    constructor(...args) {
      super(...args);
      const entry = {url: String(args[0]), opened: Date.now(), closed: null, code: null, reason: null};
      window.__rrWs.push(entry);
      this.addEventListener("close", (e) => {
        entry.closed = Date.now(); entry.code = e.code; entry.reason = e.reason;
      });
    }
  }
  window.WebSocket = Recorded;
})();
"""

#: Started in each page just before the HUP (arg: the tab's pid before the reload).
WATCHER = """
(oldPid) => {
  const deepButton = (root) => {
    const hit = root.querySelector("button");
    if (hit) return hit;
    for (const el of root.querySelectorAll("*")) {
      if (el.shadowRoot) { const b = deepButton(el.shadowRoot); if (b) return b; }
    }
    return null;
  };
  const rr = window.__rr = {pidChanged: null, newPid: null, back: null, clicks: 0, lastClick: 0};
  const iv = setInterval(() => {
    if (!window.Bokeh || Bokeh.documents.length === 0) return;
    const doc = Bokeh.documents[0];
    const pid = doc.get_model_by_name("pid"), count = doc.get_model_by_name("count");
    if (pid == null || count == null) return;
    const now = Date.now();
    if (rr.pidChanged === null) {
      if (pid.text === oldPid) return;
      rr.pidChanged = now; rr.newPid = pid.text;
    }
    if (count.text !== "0" && rr.clicks > 0) { rr.back = now; rr.count = count.text; clearInterval(iv); return; }
    if (rr.clicks === 0 || now - rr.lastClick > 500) {
      const button = deepButton(document);
      if (button && button.isConnected) { button.click(); rr.clicks += 1; rr.lastClick = now; }
    }
  }, 10);
}
"""

_READ = ("([name]) => { const m = window.Bokeh && Bokeh.documents.length"
         " && Bokeh.documents[0].get_model_by_name(name); return m ? m.text : null; }")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- server --------------------------------------------------------------------------------------

class Server:
    def __init__(self, variant: str, log_dir: Path, workers: int = 2) -> None:
        self.variant, self.workers = variant, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{variant}-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_", "GUNICORN_"))}
        env["PYTHONUNBUFFERED"] = "1"
        if variant == "bokeh-flask":
            self.command = [str(BIN / "bokeh-flask"), "serve", str(APP), "--workers", str(workers),
                            "--address", "127.0.0.1", "--port", str(self.port),
                            "--allow-websocket-origin", f"127.0.0.1:{self.port}"]
        else:
            env.update({"BOKEH_APPS": str(APP), "BOKEH_DEFAULT_SERVER_PORT": str(self.port),
                        "BOKEH_FLASK_WORKERS": str(workers),
                        "BOKEH_ALLOW_WS_ORIGIN": f"127.0.0.1:{self.port}"})
            self.command = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-k", "gevent",
                            "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "wsgi:app"]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.variant} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if len(children(self.proc.pid)) >= self.workers:
                try:
                    if requests.get(f"{self.url}/{APP_NAME}", timeout=5).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.variant} did not answer within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


# -- page load -----------------------------------------------------------------------------------

class PageLoad:
    """``n`` threads GET ``url`` back to back; each request's (start, end, ok, what)."""

    def __init__(self, url: str, n: int) -> None:
        self.url, self.n = url, n
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.records: list[tuple[float, float, bool, str]] = []
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(n)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def ok_count(self) -> int:
        with self.lock:
            return sum(1 for r in self.records if r[2])

    def _loop(self) -> None:
        while not self.stop_flag.is_set():
            t0 = time.time()
            try:
                r = requests.get(self.url, timeout=30)
                ok, what = r.status_code == 200, str(r.status_code)
            except requests.RequestException as exc:
                ok, what = False, type(exc).__name__
            with self.lock:
                self.records.append((t0, time.time(), ok, what))

    def stop(self, timeout: float = 40.0) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=timeout)


class WorkerWatch(threading.Thread):
    """Samples the master's children every 50 ms: each worker's first and last time seen."""

    def __init__(self, master: int) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.seen: dict[int, list[float]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            now = time.time()
            for pid in children(self.master):
                self.seen.setdefault(pid, [now, now])[1] = now
            self.done.wait(0.05)


def load_gaps(records: list[tuple[float, float, bool, str]], hup: float) -> dict[str, Any]:
    """After the HUP: the longest stretch with no request completing, requests over 1 s."""
    ends = sorted(r[1] for r in records if r[1] >= hup)
    gap, gap_from = 0.0, None
    prev = hup
    for end in ends:
        if end - prev > gap:
            gap, gap_from = end - prev, prev
        prev = end
    slow = [r for r in records if r[1] >= hup and r[1] - r[0] > 1.0]
    return {"longest_gap_s": round(gap, 2), "gap_from": None if gap_from is None else round(gap_from - hup, 2),
            "gap_to": None if gap_from is None else round(gap_from + gap - hup, 2),
            "over_1s": len(slow)}


# -- one run -------------------------------------------------------------------------------------

def one_run(variant: str, tabs: int, concurrency: int, timeout: float, warm: int, log_dir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    server = Server(variant, log_dir)
    load: PageLoad | None = None
    result: dict[str, Any] = {"variant": variant, "log": str(server.log_path)}
    try:
        server.wait_ready()
        old_workers = sorted(children(server.proc.pid))
        result["old_workers"] = old_workers
        watch_workers = WorkerWatch(server.proc.pid)
        watch_workers.start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows"])
            try:
                context = browser.new_context()
                context.add_init_script(WS_RECORDER)
                hup_at = [None]
                tab_ws: list[dict[str, Any]] = []  # per tab: Playwright websocket events

                def watch(page, rec):
                    def on_ws(ws):
                        opened = time.time()
                        entry = {"url": ws.url, "opened": opened, "closed": None}
                        rec["sockets"].append(entry)
                        ws.on("close", lambda _ws: entry.__setitem__("closed", time.time()))
                    page.on("websocket", on_ws)

                pages = []
                t_setup = time.monotonic()
                for i in range(tabs):
                    page = context.new_page()
                    rec = {"sockets": []}
                    watch(page, rec)
                    tab_ws.append(rec)
                    page.goto(f"{server.url}/{APP_NAME}", timeout=60_000)
                    page.locator("div.bk-Button button").click(timeout=30_000)
                    page.wait_for_function(f"() => ({_READ})(['count']) === '1'", timeout=30_000)
                    pages.append(page)
                    if time.monotonic() - t_setup > 120:
                        raise RuntimeError(f"tab setup took over 120 s ({i + 1} tabs)")
                result["setup_s"] = round(time.monotonic() - t_setup, 1)
                old_pids = [page.evaluate(_READ, ["pid"]) for page in pages]
                result["tabs_per_old_worker"] = {p: old_pids.count(p) for p in sorted(set(old_pids))}
                for page, pid in zip(pages, old_pids):
                    page.evaluate(WATCHER, pid)

                load = PageLoad(f"{server.url}/{APP_NAME}", concurrency)
                load.start()
                t_warm = time.monotonic()
                while load.ok_count() < warm and time.monotonic() - t_warm < 30:
                    pages[0].wait_for_timeout(50)
                load_started = min(r[0] for r in load.records) if load.records else time.time()
                hup = time.time()
                hup_at[0] = hup
                os.kill(server.proc.pid, signal.SIGHUP)
                states: list[dict | None] = [None] * tabs
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    pages[0].wait_for_timeout(200)
                    for i, page in enumerate(pages):
                        if states[i] is None or states[i].get("back") is None:
                            try:
                                states[i] = page.evaluate("() => window.__rr")
                            except Exception as exc:  # a page mid-navigation would be a finding too
                                states[i] = {"error": repr(exc)}
                    if all(s and s.get("back") for s in states):
                        break
                all_back = time.time()
                # load goes on for 2 s more (inside Playwright, so events keep flowing)
                end = time.time() + 2.0
                while time.time() < end:
                    pages[0].wait_for_timeout(100)
                load.stop()
                load_end = time.time()
                new_workers = sorted(children(server.proc.pid))
                result["new_workers"] = new_workers
                watch_workers.done.set()
                result["old_workers_gone"] = [round(watch_workers.seen[p][1] + 0.025 - hup, 2)
                                              for p in old_workers if p in watch_workers.seen]
                result["new_workers_forked"] = [round(watch_workers.seen[p][0] - 0.025 - hup, 2)
                                                for p in new_workers if p in watch_workers.seen]
                # per tab
                tab_rows = []
                for i, page in enumerate(pages):
                    s = states[i] or {}
                    ws_pw = [w for w in tab_ws[i]["sockets"] if w["opened"] < hup]
                    closed_pw = next((w["closed"] for w in ws_pw if w["closed"] and w["closed"] >= hup), None)
                    in_page = page.evaluate("() => window.__rrWs")
                    before = [w for w in in_page if w["opened"] / 1000 < hup]
                    closed_js = next((w for w in before if w["closed"] and w["closed"] / 1000 >= hup), None)
                    row = {
                        "old_pid": old_pids[i],
                        "new_pid": s.get("newPid"),
                        "ws_close_pw": None if closed_pw is None else round(closed_pw - hup, 3),
                        "ws_close_page": None if closed_js is None else round(closed_js["closed"] / 1000 - hup, 3),
                        "close_code": None if closed_js is None else closed_js["code"],
                        "close_reason": None if closed_js is None else closed_js["reason"],
                        "pid_changed": None if not s.get("pidChanged") else round(s["pidChanged"] / 1000 - hup, 3),
                        "back": None if not s.get("back") else round(s["back"] / 1000 - hup, 3),
                        "clicks": s.get("clicks"),
                        "sockets_opened": len(in_page),
                        "count_after": page.evaluate(_READ, ["count"]),
                        "pid_after": page.evaluate(_READ, ["pid"]),
                    }
                    if s.get("error"):
                        row["error"] = s["error"]
                    tab_rows.append(row)
                result["tabs"] = tab_rows
            finally:
                browser.close()
        recs = load.records
        result.update({
            "hup_epoch": hup, "load_started_before_hup_s": round(hup - load_started, 2),
            "all_back_s": round(all_back - hup, 2), "load_seconds": round(load_end - load_started, 1),
            "requests": len(recs), "failed": sum(1 for r in recs if not r[2]),
            "failures": [{"start": round(r[0] - hup, 3), "end": round(r[1] - hup, 3), "what": r[3]}
                         for r in recs if not r[2]][:50],
            "longest_request_s": round(max(r[1] - r[0] for r in recs), 3) if recs else None,
            "longest_request_started": round(max(recs, key=lambda r: r[1] - r[0])[0] - hup, 3) if recs else None,
            **load_gaps(recs, hup),
        })
        text = server.log_path.read_text(errors="replace")
        result["log_1001_lines"] = sum(1 for line in text.splitlines() if "1001" in line)
        result["log_graceful_timeout"] = "graceful timeout" in text.lower()
        return result
    finally:
        if load is not None:
            load.stop(timeout=5)
        server.stop()


# -- report --------------------------------------------------------------------------------------

def mmm(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    tabs = [t for r in runs for t in r["tabs"]]
    back = [t["back"] for t in tabs if t["back"] is not None]
    after_drop = [t["back"] - t["ws_close_pw"] for t in tabs if t["back"] is not None and t["ws_close_pw"] is not None]
    close = [t["ws_close_pw"] for t in tabs if t["ws_close_pw"] is not None]
    codes: dict[str, int] = {}
    for t in tabs:
        codes[str(t["close_code"])] = codes.get(str(t["close_code"]), 0) + 1
    pw_vs_page = [t["ws_close_pw"] - t["ws_close_page"] for t in tabs
                  if t["ws_close_pw"] is not None and t["ws_close_page"] is not None]
    return {"runs": len(runs), "tabs": len(tabs), "tabs_back": len(back),
            "requests": sum(r["requests"] for r in runs), "failed": sum(r["failed"] for r in runs),
            "back": back, "after_drop": after_drop, "close": close, "close_codes": codes,
            "pw_minus_page_close_median_ms": round(1000 * statistics.median(pw_vs_page), 1) if pw_vs_page else None,
            "clicks": sorted({t["clicks"] for t in tabs}, key=lambda c: (c is None, c))}


def report(args: argparse.Namespace, machine: dict[str, Any], started: str, runs: list[dict[str, Any]],
           load_start: float, load_end: float) -> str:
    m = machine
    lines = [
        f"# Rolling reload under page load, with open tabs (started {started})",
        "",
        f"- `bench/rolling_reload.py --repeats {args.repeats} --tabs {args.tabs} --concurrency {args.concurrency}"
        f" --timeout {args.timeout:g}`",
        f"- machine: {m['nproc']} cores ({m['cpu_model']}), {m['mem_gib']} GiB, {m['kernel']}; "
        f"1-minute load average {load_start:.2f} at start, {load_end:.2f} at end (shared machine)",
        f"- python {m['python']}; bokeh {m['bokeh']}; bokeh-flask {m['bokeh_flask']}; gunicorn {m['gunicorn']}; "
        f"gevent {m['gevent']}; flask {m['flask']}; playwright {m.get('playwright', '?')}; {m.get('chromium', '?')}",
        f"- bokeh-flask code under test: sha256 of app/*.py + blueprints/*.py = `{m['code_sha256_app_blueprints']}`",
        f"- app `tests/browser/apps/reconnect_counter.py`, 2 workers; "
        f"{args.tabs} tabs in one chromium context, each clicked once; page GETs at concurrency "
        f"{args.concurrency} (`requests.get`, new connection each) from before the HUP until all tabs are back + 2 s; "
        "times in seconds after `kill -HUP` of the master.",
        "",
        "| variant | failed / total requests | longest request | websocket closed after HUP: median / max | "
        "close codes | interactive after HUP: min / median / max | interactive after the websocket drop: median / max |"
        " tabs back |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_variant = {v: [r for r in runs if r["variant"] == v] for v in VARIANTS}
    sums = {}
    for v, rs in by_variant.items():
        if not rs:
            continue
        s = sums[v] = summary(rs)
        longest = max(r["longest_request_s"] or 0 for r in rs)
        close = f"{statistics.median(s['close']):.2f} / {max(s['close']):.2f}" if s["close"] else "n/a"
        drop = (f"{statistics.median(s['after_drop']):.2f} / {max(s['after_drop']):.2f}"
                if s["after_drop"] else "n/a")
        codes = ", ".join(f"{k}: {n}" for k, n in sorted(s["close_codes"].items()))
        lines.append(f"| {LABEL[v]} | {s['failed']} / {s['requests']} | {longest:.2f} s | {close} | {codes} | "
                     f"{mmm(s['back'])} | {drop} | {s['tabs_back']}/{s['tabs']} |")
    lines += ["", "Per run:", "",
              "| run | variant | failed / total | longest request (started at) | websocket closed: min / median / max |"
              " interactive after HUP: min / median / max | after the drop: min / median / max | "
              "tabs per old worker | old workers gone at | longest stretch with no request completing | "
              "requests over 1 s | setup |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs, 1):
        close = [t["ws_close_pw"] for t in r["tabs"] if t["ws_close_pw"] is not None]
        back = [t["back"] for t in r["tabs"] if t["back"] is not None]
        drop = [t["back"] - t["ws_close_pw"] for t in r["tabs"]
                if t["back"] is not None and t["ws_close_pw"] is not None]
        lines.append(f"| {i} | {r['variant']} | {r['failed']} / {r['requests']} | {r['longest_request_s']:.2f} s "
                     f"({r['longest_request_started']:+.2f}) | {mmm(close)} | {mmm(back)} | {mmm(drop)} | "
                     f"{'/'.join(str(n) for n in r['tabs_per_old_worker'].values())} | "
                     f"{', '.join(f'{x:.2f}' for x in sorted(r['old_workers_gone']))} | "
                     f"{r['longest_gap_s']:.2f} s ({r['gap_from']:+.2f} to {r['gap_to']:+.2f}) | {r['over_1s']} | "
                     f"{r['setup_s']} s |")
    lines += ["", "Details:", ""]
    for v, s in sums.items():
        lines.append(f"- {v}: clicks per tab after the reload {s['clicks']}; Playwright's close event minus the page's "
                     f"own close time, median {s['pw_minus_page_close_median_ms']} ms; failures "
                     f"{[f for r in by_variant[v] for f in r['failures']][:10]}")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    parser.add_argument("--tabs", type=int, default=20, help="browser tabs (default 20)")
    parser.add_argument("--concurrency", type=int, default=8, help="page-load threads (default 8)")
    parser.add_argument("--timeout", type=float, default=60.0, help="longest wait for the tabs after the HUP (s)")
    parser.add_argument("--warm-requests", type=int, default=20, help="successful GETs before the HUP (default 20)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=None, help="write the report here (and .json next to it)")
    args = parser.parse_args(argv)

    started = time.strftime("%Y-%m-%d %H:%M")
    machine = machine_info()
    from importlib.metadata import version
    machine["playwright"] = version("playwright")
    try:
        machine["chromium"] = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True,
                                             timeout=30).stdout.strip().split(" built")[0]
    except (OSError, subprocess.TimeoutExpired):
        machine["chromium"] = "chromium ?"
    load_start = os.getloadavg()[0]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-rolling-"))
    log(f"logs in {log_dir}")
    runs = []
    for rep in range(args.repeats):
        order = args.variants if rep % 2 == 0 else list(reversed(args.variants))
        for variant in order:
            log(f"run {rep + 1}/{args.repeats}: {variant}")
            r = one_run(variant, args.tabs, args.concurrency, args.timeout, args.warm_requests, log_dir)
            back = [t["back"] for t in r["tabs"] if t["back"] is not None]
            close = [t["ws_close_pw"] for t in r["tabs"] if t["ws_close_pw"] is not None]
            log(f"  {r['failed']}/{r['requests']} failed; closed {mmm(close)}; back {mmm(back)} "
                f"({len(back)}/{len(r['tabs'])}); codes {sorted({t['close_code'] for t in r['tabs']}, key=str)}")
            runs.append(r)
    load_end = os.getloadavg()[0]
    text = report(args, machine, started, runs, load_start, load_end)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(
            {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs}, indent=1))
        log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
