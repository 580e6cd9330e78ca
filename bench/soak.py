"""A long soak of ``bokeh-flask serve --workers 2``: does memory come back, and do descriptors?

.. code-block:: bash

    nohup .venv-3.12/bin/python bench/soak.py --out bench/results/2026-12-07-soak > /tmp/soak.log 2>&1 &
    .venv-3.12/bin/python bench/soak.py --minutes 3 --after 1.5 --warmup 0.5 --out /tmp/soak-short

The load (``--minutes``, 30) is whole sessions at a steady ``--rate`` (3 per second, so the soak
leaves most of a shared machine to others): GET the page on a new connection, websocket on
another, ACK, PULL-DOC, one PATCH-DOC round trip, close (:func:`workers.one_session`, on
``apps/counted.py``). A ``--reconnect-share`` of the sessions (a quarter) comes back 1-10 s
after closing with the same token, as a tab whose socket dropped: websocket, ACK, PULL-DOC,
round trip, close. Halfway through (``--reload-at``) the gunicorn master gets ``SIGHUP``: a
rolling reload, new workers, the old ones drain. After the load, sampling goes on for
``--after`` minutes (5) while the sessions expire by the server's own setting
(``--unused-session-lifetime``, 60 s here, checked every 10 s: what an operator would set).

Every ``--interval`` seconds (10) each process of the server (master and workers, found anew
each time, so the reload's new workers are picked up) is sampled: RSS, PSS and private
memory (``/proc/PID/smaps_rollup``) and open descriptors, with the live sessions from
``--metrics`` (``bokeh_flask_sessions``) and the client's counts. Rows go to ``<out>.csv`` as
they are taken (a stopped soak keeps what it saw); the run's facts to ``<out>.json``, with
each process's memory by mapping (``/proc/PID/smaps``) at idle, after the warm-up and at the end;
:mod:`soak_report` then writes ``<out>.md`` and ``<out>.png``.

Checks: the server's total PSS at the end (mean of the last three samples) is within 10% of
the post-warm-up level (mean of the three samples up to the end of ``--warmup``, 2 minutes),
and every process has as many descriptors at the end as its kind (master, worker) had idle
before the load. Every loop is bounded; the server's process group is killed in ``finally``.
"""
from __future__ import annotations

import argparse
import csv
import heapq
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from client import HTTP, BokehWS, RoundTripper  # noqa: E402
from run import machine_info  # noqa: E402
from servers import Server, children, open_fds, smaps_by_mapping, smaps_rollup  # noqa: E402
from workers import APP, HOST, _Pulled, one_session, start_server  # noqa: E402

FIELDS = ["t", "phase", "pid", "role", "rss", "pss", "private", "fds", "sessions_live",
          "client_sessions", "client_reconnects", "client_errors"]
#: a backlog of queued client jobs larger than this skips a beat instead of piling up
MAX_BACKLOG = 32


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


class Client:
    """Paced sessions and reconnects from a small thread pool; counts what happened."""

    def __init__(self, port: int, rate: float, reconnect_share: float, threads: int) -> None:
        self.port, self.rate, self.reconnect_share = port, rate, reconnect_share
        self.pool = ThreadPoolExecutor(threads)
        self.lock = threading.Lock()
        self.counts = {"sessions": 0, "reconnects": 0, "errors": 0, "skipped": 0}
        self.errors: list[str] = []
        self.due: list[tuple[float, str]] = []  # (monotonic time, token) of reconnects to make
        self.pending: set[Future[None]] = set()
        self.rng = random.Random(27)

    def _count(self, key: str, error: Exception | None = None) -> None:
        with self.lock:
            self.counts[key] += 1
            if error is not None and len(self.errors) < 20:
                self.errors.append(f"{time.strftime('%H:%M:%S')} {type(error).__name__}: {error}")

    def _session(self, n: int) -> None:
        try:
            token = one_session(self.port, f"s{n}")["token"]
        except Exception as exc:
            self._count("errors", exc)
            return
        self._count("sessions")
        if self.rng.random() < self.reconnect_share:
            with self.lock:
                heapq.heappush(self.due, (time.monotonic() + self.rng.uniform(1, 10), token))

    def _reconnect(self, token: str, n: int) -> None:
        try:
            ws = BokehWS(HOST, self.port, f"/{APP}/ws", token)
            try:
                RoundTripper(_Pulled(ws, ws.pull()), f"r{n}").once()
            finally:
                ws.close()
        except Exception as exc:
            self._count("errors", exc)
            return
        self._count("reconnects")

    def _submit(self, fn: Any, *args: Any) -> None:
        self.pending = {f for f in self.pending if not f.done()}
        if len(self.pending) > MAX_BACKLOG:
            self._count("skipped")
            return
        self.pending.add(self.pool.submit(fn, *args))

    def run(self, until: float, stop: threading.Event) -> None:
        """Sessions at ``rate`` per second until the monotonic time ``until``."""
        step = 1.0 / self.rate
        tick = time.monotonic()
        for n in range(10_000_000):
            if stop.is_set() or tick >= until:
                break
            now = time.monotonic()
            if tick > now:
                time.sleep(tick - now)
            self._submit(self._session, n)
            while True:
                with self.lock:
                    if not self.due or self.due[0][0] > time.monotonic():
                        break
                    _, token = heapq.heappop(self.due)
                self._submit(self._reconnect, token, n)
            tick += step
        self.pool.shutdown(wait=True)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


def live_sessions(port: int) -> int | None:
    """``bokeh_flask_sessions`` summed over apps (live across workers), from ``/metrics``."""
    try:
        http = HTTP(HOST, port, timeout=5, keep_alive=False)
        status, _, body = http.get("/metrics")
    except OSError:
        return None
    if status != 200:
        return None
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("bokeh_flask_sessions{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def sample(server: Server, t0: float, phase: str, client: Client | None) -> list[dict[str, Any]]:
    master = server.pid
    sessions = live_sessions(server.port)
    counts = client.snapshot() if client else {"sessions": 0, "reconnects": 0, "errors": 0}
    rows, t = [], round(time.monotonic() - t0, 1)
    for pid, role in [(master, "master"), *((p, "worker") for p in children(master))]:
        mem = smaps_rollup(pid)
        if not mem:
            continue
        rows.append({"t": t, "phase": phase, "pid": pid, "role": role,
                     "rss": mem.get("Rss", 0), "pss": mem.get("Pss", 0),
                     "private": mem.get("Private_Clean", 0) + mem.get("Private_Dirty", 0),
                     "fds": len(open_fds(pid)), "sessions_live": sessions,
                     "client_sessions": counts["sessions"], "client_reconnects": counts["reconnects"],
                     "client_errors": counts["errors"]})
    return rows


def fd_table(server: Server) -> dict[str, dict[str, str]]:
    """Every process's descriptors and their targets, for the diff at the end."""
    return {str(pid): open_fds(pid) for pid in [server.pid, *children(server.pid)]}


def mappings(server: Server) -> dict[str, dict[str, dict[str, int]]]:
    """Every process's memory by what is mapped (heap, anonymous, each file), for where it went."""
    return {str(pid): smaps_by_mapping(pid) for pid in [server.pid, *children(server.pid)]}


def soak(args: argparse.Namespace, out: Path, log_dir: Path) -> dict[str, Any]:
    extra = ["--unused-session-lifetime", str(args.lifetime_ms), "--check-unused-sessions",
             str(args.check_ms), "--metrics"]
    server = start_server("flask", args.workers, extra, log_dir, log_dir / "builds.txt")
    shown_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    facts: dict[str, Any] = {"command": server.command(), "args": shown_args, "log": str(server.log_path),
                             "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    stop = threading.Event()
    csv_path = out.with_suffix(".csv")
    try:
        server.wait_ready()
        one_session(server.port, "first")  # the apps' first build, as any user's first page
        time.sleep(2)
        t0 = time.monotonic()
        facts["master"] = server.pid
        facts["idle_fds"] = fd_table(server)
        facts["smaps"] = {"idle": mappings(server)}
        client = Client(server.port, args.rate, args.reconnect_share, args.threads)
        load_s, reload_s = args.minutes * 60, args.reload_at * 60
        end_s = load_s + args.after * 60
        loader = threading.Thread(target=client.run, args=(t0 + load_s, stop), daemon=True)
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            writer.writerows(sample(server, t0, "idle", None))
            loader.start()
            reloaded = False
            for i in range(1, 100_000):
                target = t0 + i * args.interval
                if target > t0 + end_s + 0.5:
                    break
                while time.monotonic() < target:  # a reload is sent on time, between samples
                    if not reloaded and time.monotonic() >= t0 + reload_s:
                        facts["reload"] = {"t": round(time.monotonic() - t0, 1),
                                           "old_workers": children(server.pid)}
                        os.kill(server.pid, signal.SIGHUP)
                        reloaded = True
                        log(f"SIGHUP to master {server.pid}: workers {facts['reload']['old_workers']}")
                    time.sleep(min(0.2, max(0.0, target - time.monotonic())))
                el = time.monotonic() - t0
                phase = "warmup" if el <= args.warmup * 60 + 1 else "load" if el <= load_s + 1 else "after"
                rows = sample(server, t0, phase, client)
                writer.writerows(rows)
                f.flush()
                if phase == "load" and "post_warmup" not in facts["smaps"]:
                    facts["smaps"]["post_warmup"] = mappings(server)
                if i % 6 == 0:
                    total = sum(r["pss"] for r in rows) / 2**20
                    log(f"t={el:.0f}s {phase}: {len(rows)} processes, PSS {total:.1f} MiB, "
                        f"sessions live {rows[0]['sessions_live']}, client {client.snapshot()}")
                if not server.alive():
                    raise RuntimeError(f"server exited:\n{server.log_tail()}")
        loader.join(60)
        facts["client"] = {**client.snapshot(), "error_samples": client.errors}
        facts["end_fds"] = fd_table(server)
        facts["smaps"]["end"] = mappings(server)
        facts["workers_at_end"] = children(server.pid)
        facts["old_workers_alive_at_end"] = [p for p in facts.get("reload", {}).get("old_workers", [])
                                             if os.path.exists(f"/proc/{p}")]
    finally:
        stop.set()
        server.stop()
    facts["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    facts["log_tail"] = server.log_tail(4000)
    return facts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="load duration")
    p.add_argument("--after", type=float, default=5.0, help="minutes of sampling after the load")
    p.add_argument("--warmup", type=float, default=2.0, help="minutes of load before the reference level")
    p.add_argument("--reload-at", type=float, default=None, help="minute of the SIGHUP (default: half the load)")
    p.add_argument("--rate", type=float, default=3.0, help="new sessions per second")
    p.add_argument("--reconnect-share", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=4, help="client threads")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--lifetime-ms", type=int, default=60_000, help="--unused-session-lifetime")
    p.add_argument("--check-ms", type=int, default=10_000, help="--check-unused-sessions")
    p.add_argument("--out", type=Path, default=BENCH / "results" / f"{time.strftime('%Y-%m-%d')}-soak")
    args = p.parse_args()
    if args.reload_at is None:
        args.reload_at = args.minutes / 2
    log_dir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    log(f"soak: {args.minutes:g} min load + {args.after:g} min after; logs in {log_dir}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    facts = soak(args, args.out, log_dir)
    args.out.with_suffix(".json").write_text(json.dumps(facts, indent=1, default=str))
    import soak_report

    soak_report.write(args.out)
    log(f"wrote {args.out}.csv/.json/.md/.png")


if __name__ == "__main__":
    main()
