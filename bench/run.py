#!/usr/bin/env python
"""bokeh-flask vs ``bokeh serve``: the issue's table, both servers in one run, with ratios.

    python bench/run.py [--quick] [--only NAME...] [--out bench/results/NAME]
    python bench/run.py --profile [--only roundtrip pages sustained]

Both servers run the same apps (bench/apps/trivial.py, examples/sliders.py,
bench/apps/bigdata.py) on loopback ports, each in its own process group; this process is the
client (threads, raw sockets, TCP_NODELAY). Every loop is bounded in count and time, and the
servers are stopped in ``finally``. See bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from client import HTTP, BokehWS, RoundTripper, Session, SliderTripper, get_page, roots_of, walk  # noqa: E402
from servers import BIN, KINDS, LABEL, ROOT, Server, start_pair  # noqa: E402

HOST = "127.0.0.1"
APPS = {
    "trivial": BENCH / "apps" / "trivial.py",
    "sliders": ROOT / "examples" / "sliders.py",  # referenced in place, not copied
    "bigdata": BENCH / "apps" / "bigdata.py",
}
APP_PATHS = [str(p) for p in APPS.values()]
SHORT_EXPIRY = ["--unused-session-lifetime", "1000", "--check-unused-sessions", "500"]
#: page-creation measures (4, 5, 6): no session expires during the run (expiry is measure 7's
#: subject; mixing it in made bokeh serve stall for 30 s in pilot runs and muddled CPU/page)
NO_EXPIRY = ["--unused-session-lifetime", "3600000", "--check-unused-sessions", "600000"]
PROBE_PATH = "/favicon.ico"  # a static file both servers serve

GROUPS = {  # group -> the measure numbers
    "roundtrip": [1], "throughput": [2, 3], "pages": [4], "sliders": [5], "workers2": [6],
    "sustained": [7], "sessions": [8, 9, 10], "bigpull": [11], "static": [12],
}
PROFILE_GROUPS = ("roundtrip", "pages", "sliders", "sustained")


@dataclass
class Config:
    quick: bool
    rounds: int              # 1: flask then bokeh; 2: ABBA order, results pooled
    concurrency: int = 8
    rt_warmup: int = 100
    rt_count: int = 500
    tput_seconds: float = 8
    page_seconds: float = 8
    workers2_samples: int = 100
    sustained_seconds: float = 15
    expire_sessions: int = 1000
    expire_window: float = 10
    hold: list[int] = field(default_factory=lambda: [1000])
    hold_flask_extra: int | None = None   # full: then 10,000 for bokeh-flask alone
    bigpull_reps: int = 3
    static_seconds: float = 4
    app_cost_runs: int = 30
    conn_cost_n: int = 500         # websockets opened on one session (memory per connection)
    probe_timeout: float = 20      # the longest stall a probe can report
    settle_timeout: float = 45     # measure 10: wait this long at most for expiry to finish

    @classmethod
    def make(cls, quick: bool) -> "Config":
        if quick:
            return cls(quick=True, rounds=1, rt_warmup=30, tput_seconds=5, page_seconds=6, expire_window=8,
                       conn_cost_n=300, settle_timeout=20)
        return cls(quick=False, rounds=2, rt_count=2000, tput_seconds=15, page_seconds=15,
                   workers2_samples=300, sustained_seconds=60, expire_window=15, hold=[4000],
                   hold_flask_extra=10000, bigpull_reps=8, static_seconds=10, app_cost_runs=100,
                   conn_cost_n=2000, probe_timeout=60, settle_timeout=150)


# -- small helpers ---------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def ms(x: float) -> float:
    return round(x * 1000, 3)


def client_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_threads(n: int, fn: Callable[[int], Any], join_timeout: float) -> list[Any]:
    """Run ``fn(i)`` in n threads; results (or the exception raised) in order."""
    results: list[Any] = [None] * n

    def wrap(i: int) -> None:
        try:
            results[i] = fn(i)
        except BaseException as exc:  # reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + join_timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return results


def order(rounds: int, index: int) -> list[str]:
    """Which server goes first alternates between measures; 2 rounds run ABBA."""
    first = list(KINDS) if index % 2 == 0 else list(reversed(KINDS))
    return first if rounds == 1 else first + list(reversed(first))


def log(msg: str) -> None:
    print(msg, flush=True)


# -- workloads (one server each) -----------------------------------------------------------------

class Probe(threading.Thread):
    """GET a small static file every ``interval`` s; records (start, latency, status)."""

    def __init__(self, server: Server, interval: float = 0.05, max_seconds: float = 600,
                 timeout: float = 60) -> None:
        super().__init__(daemon=True)
        self.timeout = timeout
        self.server, self.interval, self.max_seconds = server, interval, max_seconds
        self.samples: list[tuple[float, float, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        http = HTTP(self.server.host, self.server.port, timeout=self.timeout)
        hard = time.perf_counter() + self.max_seconds
        nxt = time.perf_counter()
        for _ in range(int(self.max_seconds / self.interval) + 10):
            if self.stop_event.is_set() or time.perf_counter() > hard:
                break
            wait = nxt - time.perf_counter()
            if wait > 0 and self.stop_event.wait(wait):
                break
            t = time.perf_counter()
            try:
                status, _, _ = http.get(PROBE_PATH)
            except Exception:
                status = 0
                http.close()
            self.samples.append((t, time.perf_counter() - t, status))
            nxt = max(nxt + self.interval, time.perf_counter())
        http.close()

    def stop(self) -> dict[str, Any]:
        self.stop_event.set()
        self.join(self.timeout + 10)
        lat = [s[1] for s in self.samples]
        return {"probes": len(lat), "failed": sum(1 for s in self.samples if s[2] != 200),
                "max_s": round(max(lat), 4) if lat else None, "p99_ms": ms(pct(lat, 99)),
                "timed_out": sum(1 for s in self.samples if s[2] == 0 and s[1] >= self.timeout - 0.5),
                "p50_ms": ms(pct(lat, 50))}


def page_load(server: Server, path: str, seconds: float, conc: int, keep_alive: bool = True,
              max_per_thread: int = 200_000) -> dict[str, Any]:
    """``conc`` clients GET ``path`` back to back for ``seconds``; counts only 200s."""
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> tuple[int, int, int, list[float]]:
        http = HTTP(server.host, server.port, timeout=30, keep_alive=keep_alive)
        ok = bad = errors = 0
        lat: list[float] = []
        for _ in range(max_per_thread):
            t = time.perf_counter()
            if t >= deadline:
                break
            try:
                status, _, _ = http.get(path)
            except Exception:
                errors += 1
                http.close()
                lat.append(time.perf_counter() - t)
                continue
            lat.append(time.perf_counter() - t)
            if status == 200:
                ok += 1
            else:
                bad += 1
        http.close()
        return ok, bad, errors, lat

    cpu0, ccpu0, t0 = server.cpu(), client_cpu(), time.perf_counter()
    results = run_threads(conc, worker, seconds + 90)
    elapsed = time.perf_counter() - t0
    cpu, ccpu = server.cpu() - cpu0, client_cpu() - ccpu0
    failures = [r for r in results if not isinstance(r, tuple)]
    rows = [r for r in results if isinstance(r, tuple)]
    ok = sum(r[0] for r in rows)
    lat = [x for r in rows for x in r[3]]
    per_conn = sorted(r[0] for r in rows)
    return {
        "per_connection_ok_min_max": [per_conn[0], per_conn[-1]] if per_conn else None,
        "ok": ok, "non_200": sum(r[1] for r in rows), "errors": sum(r[2] for r in rows) + len(failures),
        "seconds": round(elapsed, 3), "rps": round(ok / elapsed, 2),
        "server_cpu_s": round(cpu, 3), "cpu_per_page_ms": round(cpu / ok * 1000, 3) if ok else None,
        "server_cores_busy": round(cpu / elapsed, 3), "client_cpu_s": round(ccpu, 3),
        "lat_p50_ms": ms(pct(lat, 50)), "lat_p99_ms": ms(pct(lat, 99)),
        "lat_max_s": round(max(lat), 4) if lat else None,
    }


def warm_pages(server: Server, app: str = "trivial", n: int = 20, keep_alive: bool = True) -> None:
    http = HTTP(server.host, server.port, keep_alive=keep_alive)
    for _ in range(n):
        http.get(f"/{app}")
    http.close()


def w_roundtrip(server: Server, cfg: Config, quickack: bool = False) -> dict[str, Any]:
    s = Session(server.host, server.port, "trivial", quickack=quickack)
    try:
        rt = RoundTripper(s, "w")
        for _ in range(cfg.rt_warmup):
            rt.once()
        server.wait_idle(10)
        samples: list[float] = []
        deadline = time.perf_counter() + 120
        for _ in range(cfg.rt_count):
            samples.append(rt.once())
            if time.perf_counter() > deadline:
                break
    finally:
        s.close()
    return {"n": len(samples), "p50_ms": ms(pct(samples, 50)), "p99_ms": ms(pct(samples, 99)),
            "mean_ms": ms(statistics.fmean(samples)), "max_ms": ms(max(samples)), "_samples": samples}


def w_throughput(server: Server, cfg: Config, quickack: bool = False, app: str = "trivial") -> dict[str, Any]:
    """Measures 2/3 (the trivial app's echo) and 3c (``app="sliders"``: a slider's value)."""
    n = cfg.concurrency
    tripper = RoundTripper if app == "trivial" else SliderTripper
    sessions = [Session(server.host, server.port, app, quickack=quickack) for _ in range(n)]
    try:
        trips = [tripper(s, f"t{i}") for i, s in enumerate(sessions)]
        for t in trips:
            for _ in range(20):
                t.once()
        server.wait_idle(10)
        deadline = time.perf_counter() + cfg.tput_seconds

        def worker(i: int) -> int:
            done = 0
            for _ in range(10_000_000):
                if time.perf_counter() >= deadline:
                    break
                trips[i].once()
                done += 1
            return done

        cpu0, ccpu0, t0 = server.cpu(), client_cpu(), time.perf_counter()
        results = run_threads(n, worker, cfg.tput_seconds + 60)
        elapsed = time.perf_counter() - t0
        cpu, ccpu = server.cpu() - cpu0, client_cpu() - ccpu0
    finally:
        for s in sessions:
            s.close()
    errors = [repr(r) for r in results if not isinstance(r, int)]
    msgs = sum(r for r in results if isinstance(r, int))
    return {"messages": msgs, "seconds": round(elapsed, 3), "msgs_per_s": round(msgs / elapsed, 1),
            "server_cpu_s": round(cpu, 3), "cpu_per_msg_ms": round(cpu / msgs * 1000, 4) if msgs else None,
            "server_cores_busy": round(cpu / elapsed, 3), "client_cpu_s": round(ccpu, 3),
            "errors": errors[:3]}


def w_pages(app: str, between: Callable[[], None] | None = None) -> Callable[[Server, Config], dict[str, Any]]:
    """Measure 4/5's page load; ``between`` runs just before and just after it (app cost)."""
    def run(server: Server, cfg: Config) -> dict[str, Any]:
        warm_pages(server, app, 20)
        server.wait_idle(15)
        if between is not None:
            between()
        before = server.app_time()
        result = page_load(server, f"/{app}", cfg.page_seconds, cfg.concurrency)
        after = server.app_time()
        if between is not None:
            between()
        if server.app_timer_dir is not None:
            calls, app_cpu, full_gc = (b - a for a, b in zip(before[:3], after[:3]))
            result.update(app_calls=int(calls), app_cpu_s=round(app_cpu, 4), app_full_gc_s=round(full_gc, 4),
                          longest_full_gc_s=round(after[3], 4))
            result.update(app_figures(result))
        return result
    return run


def app_figures(r: dict[str, Any]) -> dict[str, Any]:
    """Per page: the app's own CPU in the server, and the server's CPU beyond it."""
    if not r["app_calls"] or not r["ok"]:
        return {"app_cpu_per_page_ms": None, "overhead_in_server_ms": None}
    return {"app_cpu_per_page_ms": round(r["app_cpu_s"] / r["app_calls"] * 1000, 3),
            "overhead_in_server_ms": round((r["server_cpu_s"] - r["app_cpu_s"]) / r["ok"] * 1000, 3)}


class AppCost:
    """The app's own code: CPU of ``Application.initialize_document`` on a fresh Document, in
    this process (the app as ``bokeh serve`` builds it), so both servers' page CPU can be
    compared beyond it.

    The machine is shared and its speed drifts by tens of percent within minutes, so runs
    are taken in batches right before and right after each server's page-load run rather
    than all at start: the pooled median then sees the same conditions as the page figures.
    The median leaves out the rare run that pays a full garbage collection (which depends on
    the process's heap, not the app); the collections the app's own allocations trigger are
    in every run. ``Document()`` itself is server work and outside the timing.
    """

    def __init__(self, path: Path) -> None:
        from bokeh.command.util import build_single_handler_application
        from bokeh.document import Document

        self.application = build_single_handler_application(str(path))
        self.new_document = Document
        for _ in range(10):  # the first runs of a process are slower (lazy imports, caches)
            self.application.initialize_document(Document())
        self.cpu: list[float] = []
        self.wall: list[float] = []
        self.batch_medians: list[float] = []

    def sample(self, runs: int) -> None:
        batch = []
        for _ in range(runs):
            doc = self.new_document()
            c, w = time.thread_time(), time.perf_counter()
            self.application.initialize_document(doc)
            batch.append(time.thread_time() - c)
            self.wall.append(time.perf_counter() - w)
        self.cpu += batch
        self.batch_medians.append(ms(statistics.median(batch)))

    def roots(self) -> list[str]:
        doc = self.new_document()
        self.application.initialize_document(doc)
        return [type(r).__name__ for r in doc.roots]

    def summary(self) -> dict[str, Any]:
        return {"runs": len(self.cpu), "cpu_median_ms": ms(statistics.median(self.cpu)),
                "cpu_p25_p75_ms": [ms(pct(self.cpu, 25)), ms(pct(self.cpu, 75))],
                "cpu_mean_ms": ms(statistics.fmean(self.cpu)), "wall_median_ms": ms(statistics.median(self.wall)),
                "batch_medians_ms": self.batch_medians, "roots": self.roots()}


def check_session(server: Server, expected_types: list[str]) -> dict[str, bool]:
    """A fresh browser: new connection for the page, new one for the websocket, PULL, compare."""
    http = HTTP(server.host, server.port, keep_alive=False)
    try:
        page = get_page(http, "/trivial")
    finally:
        http.close()
    ws = BokehWS(server.host, server.port, "/trivial/ws", page.token)
    try:
        pulled = roots_of(ws.pull())
    finally:
        ws.close()
    ids = [i for i, _ in pulled]
    structure = len(pulled) == len(page.root_ids) and [t for _, t in pulled] == expected_types
    found = bool(page.root_ids) and all(i in ids for i in page.root_ids)
    return {"structure": structure, "ids_found": found, "correct": structure and ids == page.root_ids}


def w_workers2(server: Server, cfg: Config) -> dict[str, Any]:
    expected = AppCost(APPS["trivial"]).roots()
    warm_pages(server, "trivial", 40, keep_alive=False)
    server.wait_idle(15)
    # each page on a new connection (many browsers), so the kernel spreads them over processes
    load = page_load(server, "/trivial", cfg.page_seconds, cfg.concurrency, keep_alive=False)
    server.wait_idle(20)
    per_thread = -(-cfg.workers2_samples // cfg.concurrency)
    deadline = time.perf_counter() + 120

    def worker(i: int) -> list[Any]:
        out = []
        for _ in range(per_thread):
            if time.perf_counter() > deadline:
                break
            try:
                out.append(check_session(server, expected))
            except Exception as exc:
                out.append(repr(exc))
        return out

    rows = [x for r in run_threads(cfg.concurrency, worker, 180) if isinstance(r, list) for x in r]
    checks = [r for r in rows if isinstance(r, dict)]
    n = len(rows)
    share = lambda key: round(100 * sum(1 for c in checks if c[key]) / n, 1) if n else None  # noqa: E731
    return {**load, "samples": n, "errors": [r for r in rows if isinstance(r, str)][:3],
            "correct_pct": share("correct"), "ids_found_pct": share("ids_found"),
            "structure_pct": share("structure"), "expected_root_types": expected}


def w_sustained(server: Server, cfg: Config) -> dict[str, Any]:
    warm_pages(server, "trivial", 20)
    server.wait_idle(20)
    probe = Probe(server, max_seconds=cfg.sustained_seconds + 120, timeout=cfg.probe_timeout)
    probe.start()
    try:
        load = page_load(server, "/trivial", cfg.sustained_seconds, cfg.concurrency)
    finally:
        p = probe.stop()
    longest = max(x for x in (load["lat_max_s"], p["max_s"]) if x is not None)
    return {"longest_wait_s": longest, "probe": p, "pages": load}


def open_sessions(server: Server, target: int, held: list[BokehWS], conc: int, timeout: float = 20,
                  max_failures: int = 16, max_seconds: float = 600) -> dict[str, Any]:
    """Open sessions (page + websocket + ACK + PULL) until ``held`` has ``target``; bounded."""
    lock = threading.Lock()
    failures: list[str] = []
    deadline = time.perf_counter() + max_seconds

    def worker(i: int) -> None:
        http = HTTP(server.host, server.port, timeout=timeout)
        try:
            for _ in range(target):
                with lock:
                    if len(held) >= target or len(failures) >= max_failures:
                        return
                    held.append(None)  # reserve a slot
                if time.perf_counter() > deadline:
                    with lock:
                        held.remove(None)
                    return
                try:
                    page = get_page(http, "/trivial")
                    ws = BokehWS(server.host, server.port, "/trivial/ws", page.token, timeout=timeout)
                    ws.pull()
                    ws.sock.settimeout(timeout)
                    with lock:
                        held[held.index(None)] = ws
                except Exception as exc:
                    http.close()
                    with lock:
                        held.remove(None)
                        failures.append(repr(exc)[:200])
        finally:
            http.close()

    t0 = time.perf_counter()
    run_threads(conc, worker, max_seconds + 120)
    with lock:
        while None in held:
            held.remove(None)
    return {"opened": len(held), "failures": len(failures), "failure_sample": failures[:2],
            "seconds": round(time.perf_counter() - t0, 2)}


def answers(server: Server, timeout: float = 5) -> float | None:
    """Seconds a fresh connection takes to get a static file, None if it does not answer."""
    http = HTTP(server.host, server.port, timeout=timeout)
    t = time.perf_counter()
    try:
        status, _, _ = http.get(PROBE_PATH)
        return round(time.perf_counter() - t, 4) if status == 200 else None
    except Exception:
        return None
    finally:
        http.close()


def _settle_rss(server: Server, seconds: float = 2, idle_timeout: float = 30) -> int:
    time.sleep(seconds)
    server.wait_idle(idle_timeout)
    return server.rss()


def _warm_sessions(server: Server, n: int = 30) -> None:
    """Open and close ``n`` sessions and fetch the probe's file, so the baseline includes
    what each server builds once on first use (for the probe: a file lookup cache that
    otherwise lands among the measured sessions' memory and keeps it from being returned)."""
    answers(server)
    warm: list[BokehWS] = []
    open_sessions(server, n, warm, 4)
    for ws in warm:
        ws.close()
    time.sleep(3)  # short expiry: they are discarded within ~1.5 s
    server.wait_idle(30)


def w_expire(server: Server, cfg: Config) -> dict[str, Any]:
    """Measures 8 (quick), 9, 10: hold N sessions, close them, probe while they expire."""
    _warm_sessions(server)
    base = _settle_rss(server)
    held: list[BokehWS] = []
    try:
        opened = open_sessions(server, cfg.expire_sessions, held, cfg.concurrency)
        peak = _settle_rss(server)
        alive = answers(server)
        n = len(held)
        probe = Probe(server, max_seconds=cfg.expire_window + 60, timeout=cfg.probe_timeout)
        probe.start()
        time.sleep(0.5)
        cpu0 = server.cpu()
        t_close = time.perf_counter()
        for ws in held:
            ws.close()
        held.clear()
        close_s = time.perf_counter() - t_close
        time.sleep(max(0.0, cfg.expire_window - close_s))
        p = probe.stop()
        expire_cpu = server.cpu() - cpu0
    finally:
        for ws in held:
            ws.close()
    after = _settle_rss(server, 3, idle_timeout=cfg.settle_timeout)
    return {
        "sessions": n, "open": opened, "answers_while_held_s": alive,
        "rss_base_mib": round(base / 2**20, 1), "rss_held_mib": round(peak / 2**20, 1),
        "kib_per_session": round((peak - base) / n / 1024, 1) if n else None,
        "stall_max_s": p["max_s"], "probe": p, "expire_cpu_s": round(expire_cpu, 3),
        "rss_after_mib": round(after / 2**20, 1),
        "after_vs_base_pct": round(100 * (after - base) / base, 1) if base else None,
    }


def w_hold(server: Server, cfg: Config, target: int, extra: int | None) -> dict[str, Any]:
    """Measure 8 (full): hold ``target`` pulled, idle sessions; then ``extra`` (bokeh-flask)."""
    _warm_sessions(server)
    base = _settle_rss(server)
    held: list[BokehWS] = []
    out: dict[str, Any] = {"rss_base_mib": round(base / 2**20, 1)}
    try:
        for n in [target] + ([extra] if extra else []):
            opened = open_sessions(server, n, held, cfg.concurrency, timeout=10, max_seconds=400)
            rss = _settle_rss(server)
            alive = answers(server)
            k = len(held)
            out[str(n)] = {"held": k, "open": opened, "answers_s": alive, "holds": k >= n and alive is not None,
                           "rss_mib": round(rss / 2**20, 1),
                           "kib_per_session": round((rss - base) / k / 1024, 1) if k else None}
            log(f"    {server.label}: {k}/{n} sessions held, {out[str(n)]['kib_per_session']} KiB each, "
                f"answers: {alive}")
            if k < n:
                break
    finally:
        server.stop()  # measured; stopping first spares the other server a mass expiry
        for ws in held:
            ws.close()
    return out


def w_conn_cost(server: Server, cfg: Config) -> dict[str, Any]:
    """Memory per websocket alone: N connections (page token reused) to ONE session, so the
    per-session figure of measure 8 splits into document vs connection."""
    _warm_sessions(server)
    base = _settle_rss(server)
    http = HTTP(server.host, server.port)
    try:
        token = get_page(http, "/trivial").token
    finally:
        http.close()
    held: list[BokehWS] = []
    errors: list[str] = []
    lock = threading.Lock()
    n = cfg.conn_cost_n
    per = -(-n // cfg.concurrency)

    def worker(i: int) -> None:
        for _ in range(per):
            if len(errors) > 16:
                return
            try:
                ws = BokehWS(server.host, server.port, "/trivial/ws", token, timeout=20)
                ws.pull()
                with lock:
                    held.append(ws)
            except Exception as exc:
                errors.append(repr(exc)[:200])

    try:
        run_threads(cfg.concurrency, worker, 300)
        rss = _settle_rss(server)
        k = len(held)
    finally:
        for ws in held:
            ws.close()
    return {"connections": k, "errors": errors[:2], "rss_base_mib": round(base / 2**20, 1),
            "rss_mib": round(rss / 2**20, 1), "kib_per_connection": round((rss - base) / k / 1024, 1) if k else None}


_EXPECTED_BIG: bytes | None = None


def w_bigpull(server: Server, cfg: Config) -> dict[str, Any]:
    import numpy as np

    global _EXPECTED_BIG
    if _EXPECTED_BIG is None:
        _EXPECTED_BIG = (np.arange(1_000_000, dtype="<f8") * 0.5).tobytes()
    times, whole, sizes = [], 0, []
    http = HTTP(server.host, server.port, timeout=60)
    deadline = time.perf_counter() + 180
    try:
        for _ in range(cfg.bigpull_reps):
            if time.perf_counter() > deadline:
                break
            page = get_page(http, "/bigdata")
            ws = BokehWS(server.host, server.port, "/bigdata/ws", page.token, timeout=60)
            try:
                server.wait_idle(10)
                t = time.perf_counter()
                reply = ws.pull()
                times.append(time.perf_counter() - t)
            finally:
                ws.close()
            arrays = [m for m in walk(reply.content) if m.get("type") == "ndarray"]
            ok = False
            if len(arrays) == 1:
                ref = arrays[0]["array"]
                data = ref.get("data", ref) if isinstance(ref, dict) else None
                buf = reply.buffers.get(data.get("id")) if isinstance(data, dict) else None
                sizes.append(len(buf) if buf is not None else None)
                ok = buf == _EXPECTED_BIG and arrays[0]["dtype"] == "float64" and arrays[0]["shape"] == [1_000_000]
            whole += ok
    finally:
        http.close()
    return {"reps": len(times), "whole": whole, "buffer_bytes": sizes[:1], "median_ms": ms(statistics.median(times)),
            "min_ms": ms(min(times)), "max_ms": ms(max(times))}


def w_static(server: Server, cfg: Config) -> dict[str, Any]:
    http = HTTP(server.host, server.port)
    try:
        page = get_page(http, "/trivial")
        url = page.bokehjs
        status, headers, body = http.get(url, {"Accept-Encoding": "gzip, br"})
        _, plain_headers, plain = http.get(url)
    finally:
        http.close()
    encoding = headers.get("content-encoding")
    if encoding == "gzip":
        body_ok = gzip.decompress(body) == plain
    elif encoding == "br":
        import brotli  # the server only answers br when brotli is installed in this venv

        body_ok = brotli.decompress(body) == plain
    else:
        body_ok = encoding is None and body == plain
    seconds = cfg.static_seconds
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> tuple[int, int]:
        h = HTTP(server.host, server.port)
        ok = nbytes = 0
        for _ in range(1_000_000):
            if time.perf_counter() >= deadline:
                break
            try:
                st, _, b = h.get(url, {"Accept-Encoding": "gzip, br"})
            except Exception:
                h.close()
                continue
            if st == 200:
                ok += 1
                nbytes += len(b)
        h.close()
        return ok, nbytes

    server.wait_idle(10)
    cpu0, t0 = server.cpu(), time.perf_counter()
    rows = [r for r in run_threads(cfg.concurrency, worker, seconds + 60) if isinstance(r, tuple)]
    elapsed = time.perf_counter() - t0
    cpu = server.cpu() - cpu0
    ok = sum(r[0] for r in rows)
    return {"url": url.split("?")[0], "status": status, "content_encoding": encoding,
            "gzip": encoding in ("gzip", "br"),
            "bytes_sent": len(body), "bytes_plain": len(plain), "body_ok": body_ok,
            "cache_control": headers.get("cache-control"), "rps": round(ok / elapsed, 1),
            "mb_per_s": round(sum(r[1] for r in rows) / elapsed / 1e6, 1),
            "cpu_per_req_ms": round(cpu / ok * 1000, 3) if ok else None}


# -- pooling rounds -------------------------------------------------------------------------------

def pool(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge rounds of one server: latency samples pooled, rates from summed counts."""
    if len(results) == 1:
        r = dict(results[0])
        r.pop("_samples", None)
        return r
    first = results[0]
    out: dict[str, Any] = {"rounds": results}
    if "_samples" in first:
        samples = [x for r in results for x in r["_samples"]]
        out.update(n=len(samples), p50_ms=ms(pct(samples, 50)), p99_ms=ms(pct(samples, 99)),
                   mean_ms=ms(statistics.fmean(samples)), max_ms=ms(max(samples)))
        for r in results:
            r.pop("_samples", None)
    if "messages" in first:
        msgs = sum(r["messages"] for r in results)
        secs = sum(r["seconds"] for r in results)
        cpu = sum(r["server_cpu_s"] for r in results)
        out.update(messages=msgs, seconds=round(secs, 3), msgs_per_s=round(msgs / secs, 1),
                   server_cpu_s=round(cpu, 3), cpu_per_msg_ms=round(cpu / msgs * 1000, 4))
    if "ok" in first and "rps" in first:
        ok = sum(r["ok"] for r in results)
        secs = sum(r["seconds"] for r in results)
        cpu = sum(r["server_cpu_s"] for r in results)
        out.update(ok=ok, seconds=round(secs, 3), rps=round(ok / secs, 2), server_cpu_s=round(cpu, 3),
                   cpu_per_page_ms=round(cpu / ok * 1000, 3), errors=sum(r["errors"] for r in results),
                   lat_max_s=max(r["lat_max_s"] for r in results))
    if "app_calls" in first:
        out.update({k: round(sum(r[k] for r in results), 4) for k in ("app_calls", "app_cpu_s", "app_full_gc_s")})
        out["longest_full_gc_s"] = max(r["longest_full_gc_s"] for r in results)
        out.update(app_figures(out))
    if "reps" in first:
        out.update(reps=sum(r["reps"] for r in results), whole=sum(r["whole"] for r in results),
                   median_ms=statistics.median([r["median_ms"] for r in results]),
                   min_ms=min(r["min_ms"] for r in results), max_ms=max(r["max_ms"] for r in results))
    if "content_encoding" in first:
        out.update({k: v for k, v in first.items() if k not in ("rps", "mb_per_s", "cpu_per_req_ms")})
        out.update(rps=round(statistics.fmean([r["rps"] for r in results]), 1),
                   cpu_per_req_ms=round(statistics.fmean([r["cpu_per_req_ms"] for r in results]), 3))
    return out


# -- the report -----------------------------------------------------------------------------------

@dataclass
class Row:
    id: str
    measure: str
    unit: str
    flask: Any
    bokeh: Any
    better: str          # "lower" | "higher" | ""
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        try:
            return round(float(self.flask) / float(self.bokeh), 3)
        except (TypeError, ValueError, ZeroDivisionError):
            return None


class Report:
    def __init__(self, cfg: Config, out: Path) -> None:
        self.cfg = cfg
        self.out = out
        self.rows: list[Row] = []
        self.details: dict[str, Any] = {}
        self.started = dt.datetime.now(dt.timezone.utc)
        self.machine = machine_info()

    def add(self, row: Row) -> None:
        self.rows.append(row)
        r = row.ratio
        ratio = f"{r:.2f}x" if r is not None else "n/a"
        met = "" if row.met is None else ("  [target met]" if row.met else "  [target MISSED]")
        log(f"  [{row.id}] {row.measure}: bokeh-flask {fmt(row.flask)} | bokeh serve {fmt(row.bokeh)} {row.unit}"
            f" | ratio {ratio} ({row.better} is better){'  target ' + row.target if row.target else ''}{met}")
        self.write()

    def write(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "date": self.started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "mode": "quick" if self.cfg.quick else "full", "machine": self.machine,
            "config": asdict(self.cfg),
            "rows": [{**asdict(r), "ratio": r.ratio} for r in self.rows],
            "details": self.details,
        }
        self.out.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str) + "\n")
        self.out.with_suffix(".md").write_text(self.markdown())

    def markdown(self) -> str:
        m = self.machine
        lines = [
            f"# bokeh-flask vs bokeh serve ({'quick' if self.cfg.quick else 'full'} run)", "",
            f"- date: {self.started.isoformat(timespec='seconds')}",
            f"- machine: {m['nproc']} cores ({m['cpu_model']}), {m['mem_gib']} GiB, {m['kernel']}",
            f"- python {m['python']}; bokeh {m['bokeh']}; bokeh-flask {m['bokeh_flask']}; "
            f"gunicorn {m['gunicorn']}; gevent {m['gevent']}; flask {m['flask']}; tornado {m['tornado']}",
            f"- bokeh-flask code under test: sha256 of app/*.py + blueprints/*.py = "
            f"`{m['code_sha256_app_blueprints']}` at start (the tree was being edited while benchmarks ran; "
            "`details.code_sha256_by_group` has the digest each group's servers started with)",
            "- both servers run in this one run, on loopback, one after the other per measure "
            f"({'one round' if self.cfg.rounds == 1 else 'two rounds, ABBA order, pooled'}); "
            "ratio = bokeh-flask / bokeh serve.", "",
            "| # | measure | bokeh-flask | bokeh serve | ratio | better | target (bokeh-flask) | met |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "n/a"
            met = "" if r.met is None else ("yes" if r.met else "**no**")
            lines.append(f"| {r.id} | {r.measure} | {fmt(r.flask)} {r.unit} | {fmt(r.bokeh)} {r.unit} | {ratio} "
                         f"| {r.better} | {r.target} | {met} |")
        lines += ["", "## Details", "", "```json", json.dumps(self.details, indent=1, default=str), "```", ""]
        return "\n".join(lines)


def fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return "n/a" if v is None else str(v)


def code_digest() -> str:
    """Which bokeh-flask code ran: app/ and blueprints/ may change between (or during) runs."""
    digest = hashlib.sha256()
    for path in sorted([*(ROOT / "app").glob("*.py"), *(ROOT / "blueprints").glob("*.py")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def machine_info() -> dict[str, Any]:
    from importlib.metadata import version

    def ver(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "?"

    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 2**20
    except OSError:
        pass
    bokeh_version = subprocess.run([str(BIN / "python"), "-c", "import bokeh; print(bokeh.__version__)"],
                                   capture_output=True, text=True, timeout=60).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "code_sha256_app_blueprints": code_digest(), "mem_gib": round(mem, 1),
            "kernel": platform.release(), "python": platform.python_version(), "bokeh": bokeh_version,
            "bokeh_flask": ver("bokeh-flask"), "gunicorn": ver("gunicorn"), "gevent": ver("gevent"),
            "flask": ver("flask"), "tornado": ver("tornado"), "websocket_client": ver("websocket-client")}


# -- measures (both servers) ----------------------------------------------------------------------

@contextmanager
def pair(log_dir: Path, workers: int = 1, extra: list[str] | None = None,
         app_timer: bool = False) -> Iterator[dict[str, Server]]:
    servers: dict[str, Server] = {}
    try:
        servers = start_pair(APP_PATHS, workers, extra, log_dir, app_timer)
        yield servers
    finally:
        for s in servers.values():
            s.stop()


def both(servers: dict[str, Server], cfg: Config, index: int, fn: Callable[[Server, Config], dict[str, Any]],
         rounds: int | None = None, stop_after: bool = False) -> dict[str, dict[str, Any]]:
    """Run ``fn`` on each server in turn. ``stop_after`` (stateful, one-round measures) stops
    a server as soon as its run is over, so its leftover work (expiring thousands of
    sessions) cannot slow down the other server's run."""
    per: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for kind in order(rounds or cfg.rounds, index):
        for s in servers.values():
            if s.alive():
                s.wait_idle(30)
        log(f"    running on {LABEL[kind]} ...")
        per[kind].append(fn(servers[kind], cfg))
        if not servers[kind].alive():
            raise RuntimeError(f"{LABEL[kind]} died:\n{servers[kind].log_tail()}")
        if stop_after:
            servers[kind].stop()
    return {k: pool(v) for k, v in per.items()}


def _ratio_at_most(r: dict[str, Any], key: str, limit: float) -> bool:
    f, b = r["flask"].get(key), r["bokeh"].get(key)
    return bool(f and b and f / b <= limit)


def run_group(name: str, cfg: Config, rep: Report, log_dir: Path) -> None:
    log(f"\n== {name} (measure {', '.join(map(str, GROUPS[name]))}) ==")
    rep.details.setdefault("code_sha256_by_group", {})[name] = code_digest()  # servers start after this
    if name == "roundtrip":
        with pair(log_dir) as sv:
            warm_pages(sv["flask"]), warm_pages(sv["bokeh"])
            r = both(sv, cfg, 0, w_roundtrip)
            q = both(sv, cfg, 1, lambda s, c: w_roundtrip(s, c, quickack=True))
        rep.details["1_roundtrip"] = r
        rep.details["1_roundtrip_quickack"] = q
        rep.add(Row("1a", "ws round trip p50", "ms", r["flask"]["p50_ms"], r["bokeh"]["p50_ms"], "lower",
                    "<= 1.5 ms", r["flask"]["p50_ms"] <= 1.5))
        rep.add(Row("1b", "ws round trip p99", "ms", r["flask"]["p99_ms"], r["bokeh"]["p99_ms"], "lower",
                    "<= 5 ms", r["flask"]["p99_ms"] <= 5))
        for row, stat in (("1c", "p50"), ("1d", "p99")):
            rep.add(Row(row, f"  same, client TCP_QUICKACK: {stat}", "ms", q["flask"][f"{stat}_ms"],
                        q["bokeh"][f"{stat}_ms"], "lower"))
    elif name == "throughput":
        with pair(log_dir) as sv:
            r = both(sv, cfg, 1, w_throughput)
            q = both(sv, cfg, 0, lambda s, c: w_throughput(s, c, quickack=True))
        rep.details["2_3_throughput"] = r
        rep.details["2_3_throughput_quickack"] = q
        rep.add(Row("2", f"messages/s, {cfg.concurrency} sessions", "msg/s", r["flask"]["msgs_per_s"],
                    r["bokeh"]["msgs_per_s"], "higher", ">= 600 msg/s", r["flask"]["msgs_per_s"] >= 600))
        rep.add(Row("3", "server CPU per message", "ms", r["flask"]["cpu_per_msg_ms"], r["bokeh"]["cpu_per_msg_ms"],
                    "lower", "<= 1.5 ms", (r["flask"]["cpu_per_msg_ms"] or 99) <= 1.5))
        rep.add(Row("2b", "  messages/s, client TCP_QUICKACK", "msg/s", q["flask"]["msgs_per_s"],
                    q["bokeh"]["msgs_per_s"], "higher"))
        rep.add(Row("3b", "  CPU per message, client TCP_QUICKACK", "ms", q["flask"]["cpu_per_msg_ms"],
                    q["bokeh"]["cpu_per_msg_ms"], "lower"))
        with pair(log_dir) as sv:
            sl = both(sv, cfg, 1, lambda s, c: w_throughput(s, c, quickack=True, app="sliders"))
        rep.details["3c_sliders_throughput_quickack"] = sl
        rep.add(Row("3c", f"server CPU per message, sliders, {cfg.concurrency} sessions (QUICKACK)", "ms",
                    sl["flask"]["cpu_per_msg_ms"], sl["bokeh"]["cpu_per_msg_ms"], "lower", "<= 0.33x",
                    _ratio_at_most(sl, "cpu_per_msg_ms", 0.33)))
    elif name == "pages":
        with pair(log_dir, extra=NO_EXPIRY) as sv:
            r = both(sv, cfg, 2, w_pages("trivial"))
        rep.details["4_pages"] = r
        ratio = r["flask"]["rps"] / r["bokeh"]["rps"] if r["bokeh"]["rps"] else 0
        rep.add(Row("4", f"page req/s, trivial app, c={cfg.concurrency}, 1 worker", "req/s", r["flask"]["rps"],
                    r["bokeh"]["rps"], "higher", ">= 1.2x", ratio >= 1.2))
        rep.add(Row("4b", "server CPU per page, trivial app", "ms", r["flask"]["cpu_per_page_ms"],
                    r["bokeh"]["cpu_per_page_ms"], "lower", "<= 0.5x", _ratio_at_most(r, "cpu_per_page_ms", 0.5)))
        with pair(log_dir, extra=NO_EXPIRY) as sv:
            one = both(sv, cfg, 2, lambda s, c: w_pages("trivial")(s, replace(c, concurrency=1)))
        rep.details["4c_pages_c1"] = one
        rep.add(Row("4c", "server CPU per page, trivial app, c=1", "ms", one["flask"]["cpu_per_page_ms"],
                    one["bokeh"]["cpu_per_page_ms"], "lower", "<= 0.5x", _ratio_at_most(one, "cpu_per_page_ms", 0.5)))
    elif name == "sliders":
        app = AppCost(APPS["sliders"])
        batch = -(-cfg.app_cost_runs // (4 * cfg.rounds))  # a batch before and after each run
        with pair(log_dir, extra=NO_EXPIRY, app_timer=True) as sv:
            r = both(sv, cfg, 3, w_pages("sliders", lambda: app.sample(batch)))
        cost = app.summary()
        rep.details["5_sliders"] = {**r, "app_cost": cost}
        own = cost["cpu_median_ms"]
        over = {k: round(r[k]["cpu_per_page_ms"] - own, 3) for k in KINDS}
        rep.details["5_sliders"]["overhead_ms"] = over
        inside = {k: r[k]["overhead_in_server_ms"] for k in KINDS}
        ratio = inside["flask"] / inside["bokeh"] if inside["flask"] and inside["bokeh"] else None
        rep.add(Row("5a", "sliders page: server CPU per page", "ms", r["flask"]["cpu_per_page_ms"],
                    r["bokeh"]["cpu_per_page_ms"], "lower"))
        rep.add(Row("5b", "sliders page: overhead beyond the app's code, timed in each server", "ms",
                    inside["flask"], inside["bokeh"], "lower", "<= 0.5x", ratio is not None and ratio <= 0.5))
        rep.add(Row("5d", "  the app's code per page, timed in each server", "ms",
                    r["flask"]["app_cpu_per_page_ms"], r["bokeh"]["app_cpu_per_page_ms"], ""))
        rep.add(Row("5e", f"  overhead beyond the app's code timed in this client ({own:.2f} ms)", "ms",
                    over["flask"], over["bokeh"], "lower"))
        rep.add(Row("5f", "  longest full collection in the worker (CPU), start-up included", "ms",
                    ms(r["flask"]["longest_full_gc_s"]), ms(r["bokeh"]["longest_full_gc_s"]), "lower"))
        rep.add(Row("5c", "sliders page req/s, c=8", "req/s", r["flask"]["rps"], r["bokeh"]["rps"], "higher"))
    elif name == "workers2":
        with pair(log_dir, workers=2, extra=NO_EXPIRY) as sv:
            r = both(sv, cfg, 4, w_workers2, rounds=1, stop_after=True)
        rep.details["6_workers2"] = r
        rep.add(Row("6a", "page req/s, 2 workers / --num-procs 2", "req/s", r["flask"]["rps"], r["bokeh"]["rps"],
                    "higher"))
        rep.add(Row("6b", "sessions correct (page roots == pulled roots)", "%", r["flask"]["correct_pct"],
                    r["bokeh"]["correct_pct"], "higher", "100%", r["flask"]["correct_pct"] == 100))
    elif name == "sustained":
        with pair(log_dir, extra=SHORT_EXPIRY) as sv:
            r = both(sv, cfg, 5, w_sustained, rounds=1, stop_after=True)
        rep.details["7_sustained"] = r
        rep.add(Row("7", f"longest wait, {cfg.sustained_seconds:g} s page load + expiry", "s",
                    r["flask"]["longest_wait_s"], r["bokeh"]["longest_wait_s"], "lower", "<= 1 s",
                    r["flask"]["longest_wait_s"] <= 1))
        rep.add(Row("7b", "  of which the static-file probe", "s", r["flask"]["probe"]["max_s"],
                    r["bokeh"]["probe"]["max_s"], "lower"))
    elif name == "sessions":
        with pair(log_dir, extra=SHORT_EXPIRY) as sv:
            r = both(sv, cfg, 6, w_expire, rounds=1, stop_after=True)
        rep.details["8_9_10_expire"] = r
        n = cfg.expire_sessions
        if cfg.quick:
            rep.add(Row("8", f"memory per held session ({n} held)", "KiB", r["flask"]["kib_per_session"],
                        r["bokeh"]["kib_per_session"], "lower", "<= 50 KiB",
                        (r["flask"]["kib_per_session"] or 1e9) <= 50))
        rep.add(Row("9", f"longest stall while {n} closed sessions expire", "s", r["flask"]["stall_max_s"],
                    r["bokeh"]["stall_max_s"], "lower", "<= 0.5 s", (r["flask"]["stall_max_s"] or 1e9) <= 0.5))
        rep.add(Row("10", "RSS after expiry, above baseline", "+%", r["flask"]["after_vs_base_pct"],
                    r["bokeh"]["after_vs_base_pct"], "lower", "<= +10%",
                    (r["flask"]["after_vs_base_pct"] or 1e9) <= 10))
        with pair(log_dir, extra=SHORT_EXPIRY) as sv:
            c = both(sv, cfg, 7, w_conn_cost, rounds=1, stop_after=True)
        rep.details["8_connection_cost"] = c
        rep.add(Row("8c", f"  memory per websocket alone ({cfg.conn_cost_n} on one session)", "KiB",
                    c["flask"]["kib_per_connection"],
                    c["bokeh"]["kib_per_connection"], "lower"))
        if not cfg.quick:
            target, extra = cfg.hold[0], cfg.hold_flask_extra
            with pair(log_dir, extra=SHORT_EXPIRY) as sv:
                held = {}
                for kind in order(1, 7):
                    for s in sv.values():
                        if s.alive():
                            s.wait_idle(30)
                    log(f"    holding sessions on {LABEL[kind]} ...")
                    held[kind] = w_hold(sv[kind], cfg, target, extra if kind == "flask" else None)
            rep.details["8_hold"] = held
            f, b = held["flask"].get(str(target), {}), held["bokeh"].get(str(target), {})
            rep.add(Row("8", f"memory per held session ({target} held)", "KiB", f.get("kib_per_session"),
                        b.get("kib_per_session"), "lower"))
            if extra:
                fx = held["flask"].get(str(extra), {})
                rep.add(Row("8b", f"{extra} sessions held (bokeh-flask only; KiB each)", "KiB",
                            fx.get("kib_per_session"), None, "lower", f"{extra} held at <= 50 KiB",
                            bool(fx.get("holds")) and (fx.get("kib_per_session") or 1e9) <= 50))
    elif name == "bigpull":
        with pair(log_dir) as sv:
            r = both(sv, cfg, 8, w_bigpull)
        rep.details["11_bigpull"] = r
        ratio = r["flask"]["median_ms"] / r["bokeh"]["median_ms"]
        rep.add(Row("11", "PULL 1,000,000 float64 (median)", "ms", r["flask"]["median_ms"], r["bokeh"]["median_ms"],
                    "lower", "<= 1.0x", ratio <= 1.0 and r["flask"]["whole"] == r["flask"]["reps"]))
        rep.add(Row("11b", "pulls with every byte intact", "of reps", f"{r['flask']['whole']}/{r['flask']['reps']}",
                    f"{r['bokeh']['whole']}/{r['bokeh']['reps']}", ""))
    elif name == "static":
        with pair(log_dir) as sv:
            r = both(sv, cfg, 9, w_static)
        rep.details["12_static"] = r
        rep.add(Row("12a", "bokeh.min.js compressed (Accept-Encoding: gzip, br)", "",
                    r["flask"]["content_encoding"] or "none", r["bokeh"]["content_encoding"] or "none", "",
                    "gzip", r["flask"]["gzip"]))
        ratio = r["flask"]["rps"] / r["bokeh"]["rps"] if r["bokeh"]["rps"] else 0
        rep.add(Row("12b", f"bokeh.min.js req/s, c={cfg.concurrency}", "req/s", r["flask"]["rps"], r["bokeh"]["rps"],
                    "higher", ">= 1.0x", ratio >= 1.0))


# -- profiling (bokeh-flask only) -----------------------------------------------------------------

def profile(groups: list[str], cfg: Config, out_dir: Path, log_dir: Path, seconds: int = 20,
            kind: str = "flask") -> dict[str, Any]:
    """py-spy on the serving process (bokeh-flask's worker by default) while measure 1, 4, 5 or
    7's workload runs."""
    pyspy = BIN / "py-spy"
    summaries: dict[str, Any] = {}
    for name in groups:
        extra = {"sustained": SHORT_EXPIRY, "pages": NO_EXPIRY, "sliders": NO_EXPIRY}.get(name, [])
        server = Server(kind, APP_PATHS, 1, extra, log_dir)
        recorders: list[subprocess.Popen] = []
        try:
            server.start()
            server.wait_ready()
            warm_pages(server, "sliders" if name == "sliders" else "trivial", 30)
            worker = server.worker_pids()[0]
            stem = out_dir / f"profile-{name}{'' if kind == 'flask' else '-' + kind}"
            for fmt_, suffix in (("flamegraph", ".svg"), ("raw", ".txt")):
                recorders.append(subprocess.Popen(
                    [str(pyspy), "record", "--nonblocking", "--pid", str(worker), "--duration", str(seconds),
                     "--rate", "200", "--format", fmt_, "-o", str(stem) + suffix],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True))
            time.sleep(1.0)
            log(f"  profiling {name} for {seconds}s (worker {worker}) ...")
            work = seconds + 0.5
            if name == "roundtrip":
                s = Session(server.host, server.port, "trivial")
                rt, deadline, n = RoundTripper(s, "p"), time.perf_counter() + work, 0
                for _ in range(10_000_000):
                    if time.perf_counter() > deadline:
                        break
                    rt.once()
                    n += 1
                s.close()
                info: dict[str, Any] = {"round_trips": n}
            else:
                info = page_load(server, "/sliders" if name == "sliders" else "/trivial", work, cfg.concurrency)
            for p in recorders:
                p.wait(timeout=seconds + 60)
            summaries[name] = {"workload": info, **summarize_raw(Path(str(stem) + ".txt"))}
            log(format_profile(name, summaries[name]))
        finally:
            for p in recorders:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=10)
            server.stop()
    return summaries


def summarize_raw(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive time per function, and self time per package, from py-spy's raw output."""
    total = 0
    self_t: Counter = Counter()
    incl: Counter = Counter()
    pkgs: Counter = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [norm(f) for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        total += n
        self_t[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
        pkgs[package(frames[-1])] += n
    share = lambda c: [(k, round(100 * v / total, 1)) for k, v in c.most_common(top)]  # noqa: E731
    return {"samples": total, "self": share(self_t), "inclusive": share(incl), "packages": share(pkgs)}


def norm(frame: str) -> str:
    """``func (path/file.py:123)`` -> ``func (path/file.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})"


def package(frame: str) -> str:
    where = frame.partition(" (")[2].rstrip(")")
    if "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    if "/work/main/" in where:
        where = "bokeh_flask/" + where.split("/work/main/", 1)[1]
    parts = where.split("/")
    if parts[0] == "bokeh_flask" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else "stdlib:" + parts[0]


def format_profile(name: str, s: dict[str, Any]) -> str:
    lines = [f"\n### profile: {name} ({s['samples']} samples)", "", f"workload: {json.dumps(s['workload'])}", "",
             "self time by package:", ""]
    lines += [f"- {k}: {v}%" for k, v in s["packages"][:12]]
    lines += ["", "top functions, self time:", ""] + [f"- {v}% {k}" for k, v in s["self"][:20]]
    lines += ["", "top functions, inclusive time:", ""] + [f"- {v}% {k}" for k, v in s["inclusive"][:30]]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------

def parse_only(values: list[str] | None) -> list[str]:
    if not values:
        return list(GROUPS)
    chosen: list[str] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if part.isdigit():
                part = next((g for g, nums in GROUPS.items() if int(part) in nums), part)
            if part not in GROUPS:
                raise SystemExit(f"unknown measure {part!r}; choose from {', '.join(GROUPS)} or 1-12")
            if part not in chosen:
                chosen.append(part)
    return [g for g in GROUPS if g in chosen]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~6 minutes: shorter runs, 1,000 held sessions")
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"groups ({', '.join(GROUPS)}) or measure numbers")
    ap.add_argument("--out", help="result path without extension (default bench/results/<date>[-quick])")
    ap.add_argument("--profile", action="store_true",
                    help="py-spy bokeh-flask's worker under measures 1, 4, 5, 7 (roundtrip, pages, sliders, sustained)")
    ap.add_argument("--profile-seconds", type=int, default=20)
    ap.add_argument("--profile-server", choices=KINDS, default="flask",
                    help="profile bokeh serve instead, for comparison (files get a -bokeh suffix)")
    args = ap.parse_args(argv)

    # SIGTERM/SIGHUP unwind like Ctrl-C, so every server is stopped in its finally block
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    cfg = Config.make(args.quick)
    today = dt.date.today().isoformat()
    log_dir = Path(tempfile.mkdtemp(prefix="bokeh-flask-bench-"))
    results_dir = BENCH / "results"
    if args.profile:
        groups = [g for g in parse_only(args.only) if g in PROFILE_GROUPS] if args.only else list(PROFILE_GROUPS)
        kind = args.profile_server
        summaries = profile(groups, cfg, results_dir, log_dir, args.profile_seconds, kind)
        suffix = "" if kind == "flask" else f"-{kind}"
        out = Path(args.out) if args.out else results_dir / f"profile-{today}{suffix}"
        out.with_suffix(".json").write_text(json.dumps(summaries, indent=1) + "\n")
        out.with_suffix(".md").write_text(
            f"# py-spy profiles of {LABEL[kind]}'s serving process ({today})\n\nFlame graphs: "
            + ", ".join(f"`profile-{g}{suffix}.svg`" for g in groups) + "\n"
            + "\n".join(format_profile(g, s) for g, s in summaries.items()) + "\n")
        log(f"\nprofiles written to {out.with_suffix('.md')}; server logs in {log_dir}")
        return 0

    out = Path(args.out) if args.out else results_dir / f"{today}{'-quick' if args.quick else ''}"
    out = out.with_suffix("") if out.suffix in (".md", ".json") else out
    rep = Report(cfg, out)
    log(f"bokeh-flask bench ({'quick' if cfg.quick else 'full'}): {rep.machine['nproc']} cores, "
        f"{rep.machine['cpu_model']}; results -> {out}.md/.json; server logs in {log_dir}")
    t0 = time.monotonic()
    failed: dict[str, str] = {}
    for name in parse_only(args.only):
        g0 = time.monotonic()
        try:
            run_group(name, cfg, rep, log_dir)
            rep.details.setdefault("group_seconds", {})[name] = round(time.monotonic() - g0, 1)
        except KeyboardInterrupt:
            log("interrupted; servers stopped")
            rep.details["interrupted"] = name
            rep.write()
            return 130
        except Exception as exc:
            import traceback

            traceback.print_exc()
            failed[name] = repr(exc)[:500]
            rep.details.setdefault("failed", {})[name] = failed[name]
            rep.write()
    rep.details["elapsed_s"] = round(time.monotonic() - t0, 1)
    rep.write()
    log(f"\ndone in {rep.details['elapsed_s']:.0f}s: {out}.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
