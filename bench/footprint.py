#!/usr/bin/env python
"""An idle server's cost, side by side with ``bokeh serve`` (issue 27 item 3).

    python bench/footprint.py [--repeats 3] [--out bench/results/NAME]

Per repeat, for each server in turn (the order alternates between repeats), on
``bench/apps/trivial.py`` with defaults otherwise:

- **start-up**: from ``Popen`` to the first 200 answer of the app's page (``GET /trivial``
  every 20 ms, a new connection each time).
- **idle memory**: a fresh start with 1 worker / process, then with 2 (``--workers 2`` /
  ``--num-procs 2``); once ``/favicon.ico`` answers and the tree has been quiet for 2 s
  (no session made), PSS (``/proc/PID/smaps_rollup``: shared pages counted once across the
  processes that share them), USS (private pages) and RSS of every process of the tree.
  "added per worker" = whole PSS with 2 less whole PSS with 1.

Read the ratios (bokeh-flask / bokeh serve); the machine is shared.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from client import HTTP  # noqa: E402
from servers import KINDS, LABEL, Server, tree  # noqa: E402

APP = str(BENCH / "apps" / "trivial.py")


def memory_of(pid: int) -> dict[str, int]:
    """KiB of one process: Pss, private (USS) and Rss, from smaps_rollup."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        return {"pss": 0, "uss": 0, "rss": 0}
    return {"pss": fields.get("Pss", 0), "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
            "rss": fields.get("Rss", 0)}


def start_up(kind: str, log_dir: Path, timeout: float = 60) -> float:
    server = Server(kind, [APP], log_dir=log_dir)
    t0 = time.perf_counter()
    server.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not server.alive():
                raise RuntimeError(f"{server.label} exited:\n{server.log_tail()}")
            try:
                http = HTTP(server.host, server.port, timeout=5, keep_alive=False)
                status, _, _ = http.get("/trivial")
                if status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{server.label}: no page within {timeout} s")
    finally:
        server.stop()


def idle_memory(kind: str, workers: int, log_dir: Path) -> dict[str, Any]:
    server = Server(kind, [APP], workers=workers, log_dir=log_dir)
    server.start()
    try:
        server.wait_ready()
        time.sleep(1.0)
        server.wait_idle(20, window=2.0, threshold=0.02)
        per = {pid: memory_of(pid) for pid in tree(server.pid)}
        workers_pids = set(server.worker_pids())
        return {
            "pss_kib": sum(m["pss"] for m in per.values()),
            "uss_kib": sum(m["uss"] for m in per.values()),
            "rss_kib": sum(m["rss"] for m in per.values()),
            "processes": [{"pid": pid, "role": "worker" if pid in workers_pids and pid != server.pid else "main",
                           **m} for pid, m in per.items()],
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", help="result path without extension (default: print only)")
    args = ap.parse_args(argv)
    log_dir = Path(f"/tmp/bench-footprint-{int(time.time())}")
    log_dir.mkdir(parents=True)
    print(f"logs in {log_dir}", flush=True)
    raw: dict[str, dict[str, list[Any]]] = {k: {"startup_s": [], "idle1": [], "idle2": []} for k in KINDS}
    for rep in range(args.repeats):
        kinds = KINDS if rep % 2 == 0 else tuple(reversed(KINDS))
        for kind in kinds:
            raw[kind]["startup_s"].append(round(start_up(kind, log_dir), 3))
            raw[kind]["idle1"].append(idle_memory(kind, 1, log_dir))
            raw[kind]["idle2"].append(idle_memory(kind, 2, log_dir))
            print(f"  {rep} {LABEL[kind]}: start-up {raw[kind]['startup_s'][-1]} s, "
                  f"PSS 1 / 2 workers {raw[kind]['idle1'][-1]['pss_kib'] / 1024:.1f} / "
                  f"{raw[kind]['idle2'][-1]['pss_kib'] / 1024:.1f} MiB", flush=True)
    rows = table(raw)
    text = report(rows, raw)
    print(text)
    if args.out:
        Path(args.out + ".md").write_text(text)
        Path(args.out + ".json").write_text(json.dumps(raw, indent=1))
    return 0


def table(raw: dict[str, dict[str, list[Any]]]) -> list[tuple[str, float, float, str]]:
    def med(kind: str, key: str, field: str | None = None) -> float:
        values = raw[kind][key] if field is None else [r[field] for r in raw[kind][key]]
        return statistics.median(values)

    def added(kind: str) -> float:
        return statistics.median(b["pss_kib"] - a["pss_kib"] for a, b in zip(raw[kind]["idle1"], raw[kind]["idle2"]))

    rows = [("start-up to the first page (median)", med("flask", "startup_s"), med("bokeh", "startup_s"), "s")]
    for field, name in (("pss_kib", "PSS"), ("uss_kib", "USS"), ("rss_kib", "RSS")):
        rows.append((f"idle server, 1 worker / process, whole tree {name}", med("flask", "idle1", field) / 1024,
                     med("bokeh", "idle1", field) / 1024, "MiB"))
    rows.append(("PSS a second worker / process adds", added("flask") / 1024, added("bokeh") / 1024, "MiB"))
    return rows


def report(rows: list[tuple[str, float, float, str]], raw: dict[str, dict[str, list[Any]]]) -> str:
    lines = [f"# Idle footprint and start-up, {dt.date.today()}", "",
             "`bench/footprint.py`: bench/apps/trivial.py, defaults, medians over "
             f"{len(raw['flask']['startup_s'])} repeats (order alternating).", "",
             "| measure | bokeh-flask | bokeh serve | ratio |", "|---|---|---|---|"]
    for name, f, b, unit in rows:
        lines.append(f"| {name} | {f:.2f} {unit} | {b:.2f} {unit} | {f / b:.2f}x |")
    lines += ["", "Per process, median repeat (KiB):", ""]
    for kind in KINDS:
        for key in ("idle1", "idle2"):
            procs = raw[kind][key][len(raw[kind][key]) // 2]["processes"]
            lines.append(f"- {LABEL[kind]} {key}: " + ", ".join(
                f"{p['role']} PSS {p['pss']} USS {p['uss']} RSS {p['rss']}" for p in procs))
    lines.append(f"- start-up runs (s): flask {raw['flask']['startup_s']}, bokeh {raw['bokeh']['startup_s']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
