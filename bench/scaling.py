"""Whole sessions per second at N workers, from a multi-process client: ``bokeh-flask serve
--workers N`` against ``bokeh serve --num-procs N``, side by side in one run.

.. code-block:: bash

    .venv-3.12/bin/python bench/scaling.py --out bench/results/2026-12-07-scaling   # ~3 minutes
    .venv-3.12/bin/python bench/scaling.py --workers 1 2 4 8 --procs 8 --concurrency 64 --seconds 20

One session is what one browser tab does (:func:`workers.one_session`, on
``apps/counted.py``): GET the page on a new connection, websocket on another, ACK,
PULL-DOC, one PATCH-DOC round trip (the TextInput's value -> the Div's text), close; its
latency is the whole of it. The client is ``--procs`` processes (default: one per core),
forked before any server starts, each running ``--concurrency / --procs`` threads doing
sessions back to back: one Python process holds a GIL and tops out near one core, which is
what kept the previous single-process client flat past 4 workers.

For each N in ``--workers`` both servers start together (``--unused-session-lifetime
3600000``: no expiry mixed in), each gets warm-up sessions, then each in turn is loaded for
``--seconds`` (order alternating with N and with the round) and stopped as soon as its part is done. Reported
per server and N: sessions/s, p50/p99 of a session (nearest rank), builds per session (lines
the app added to its builds file during the part / sessions started: the app's code runs once
per build), server CPU per session, and the client's own CPU: every client process's
``utime + stime`` (``RUSAGE_SELF``, all its threads) over the part's wall time. A client
process near 1.0 core is GIL-bound and would be the limit; the client's and the server's
cores together near ``nproc`` means the machine is.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import NO_EXPIRY, machine_info  # noqa: E402
from servers import CLK_TCK, KINDS, LABEL, Server, run_queue_wait, tree  # noqa: E402
from workers import count_lines, one_session, percentile, start_server, warm_up  # noqa: E402

MAX_SESSIONS_PER_THREAD = 1_000_000


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def _own_wait() -> float:
    """Seconds this thread has waited, runnable, for a CPU."""
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def server_wait(server: Server) -> float:
    return sum(run_queue_wait(p) for p in tree(server.pid))


def _client_process(jobs: Any, results: Any, threads: int) -> None:
    """A client process: for each job (port, seconds, tag), ``threads`` threads do sessions
    back to back; it answers with latencies, errors and its own CPU and wall time."""
    for _ in range(10_000):
        job = jobs.get()
        if job is None:
            return
        port, seconds, tag = job
        latencies: list[list[float]] = [[] for _ in range(threads)]
        errors: list[str] = []
        deadline = time.monotonic() + seconds
        waits = [0.0] * threads

        def work(i: int) -> None:
            w0 = _own_wait()
            for j in range(MAX_SESSIONS_PER_THREAD):
                if time.monotonic() >= deadline:
                    waits[i] = _own_wait() - w0
                    return
                t0 = time.perf_counter()
                try:
                    one_session(port, f"{tag}-{os.getpid()}-{i}-{j}")
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies[i].append(time.perf_counter() - t0)

        ru0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(seconds + 120)
        ru1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - w0
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        results.put({"pid": os.getpid(), "latencies": [x for xs in latencies for x in xs],
                     "errors": len(errors), "error_samples": errors[:3], "cpu_s": cpu, "wall_s": wall,
                     "wait_s": sum(waits)})


class Client:
    """``procs`` forked client processes, reused for every part."""

    def __init__(self, procs: int, concurrency: int) -> None:
        ctx = mp.get_context("fork")
        self.jobs, self.results = ctx.Queue(), ctx.Queue()
        per = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
        self.procs = [ctx.Process(target=_client_process, args=(self.jobs, self.results, n), daemon=True)
                      for n in per if n]
        for p in self.procs:
            p.start()

    def load(self, port: int, seconds: float, tag: str) -> list[dict[str, Any]]:
        for _ in self.procs:
            self.jobs.put((port, seconds, tag))
        return [self.results.get(timeout=seconds + 180) for _ in self.procs]

    def close(self) -> None:
        for _ in self.procs:
            self.jobs.put(None)
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLK_TCK


def part(client: Client, server: Server, builds: Path, seconds: float, tag: str) -> dict[str, Any]:
    builds0, cpu0, busy0, t0 = count_lines(builds), server.cpu(), machine_busy(), time.monotonic()
    wait0 = server_wait(server)
    per_proc = client.load(server.port, seconds, tag)
    wall = time.monotonic() - t0
    server_cpu, busy = server.cpu() - cpu0, machine_busy() - busy0
    waited = server_wait(server) - wait0
    time.sleep(0.2)  # a build is written before its page is sent; margin for the file
    builds_n = count_lines(builds) - builds0
    lat = [x for r in per_proc for x in r["latencies"]]
    ok, failed = len(lat), sum(r["errors"] for r in per_proc)
    client_cpu = sum(r["cpu_s"] for r in per_proc)
    return {
        "seconds": round(wall, 2), "sessions": ok, "errors": failed,
        "error_samples": [e for r in per_proc for e in r["error_samples"]][:5],
        "sessions_per_s": round(ok / wall, 1),
        "p50_ms": round(1000 * percentile(lat, 0.50), 1) if lat else None,
        "p99_ms": round(1000 * percentile(lat, 0.99), 1) if lat else None,
        "builds_per_session": round(builds_n / (ok + failed), 3) if ok + failed else None,
        "server_cores": round(server_cpu / wall, 2),
        "server_cpu_ms_per_session": round(1000 * server_cpu / ok, 2) if ok else None,
        "server_wait_ms_per_session": round(1000 * waited / ok, 2) if ok else None,
        # the server's threads running or runnable, on average: N for N busy one-thread workers
        "server_busy_threads": round((server_cpu + waited) / wall, 2),
        "client_cores": round(client_cpu / wall, 2),
        "client_wait_ms_per_session": round(1000 * sum(r["wait_s"] for r in per_proc) / ok, 2) if ok else None,
        "client_cores_per_process_max": round(max(r["cpu_s"] / r["wall_s"] for r in per_proc), 2),
        "client_cpu_ms_per_session": round(1000 * client_cpu / ok, 2) if ok else None,
        "others_cores": round((busy - server_cpu - client_cpu) / wall, 2),
        "loadavg_1min_after": float(Path("/proc/loadavg").read_text().split()[0]),
        "processes": len(server.worker_pids()),
    }


def run(workers_list: list[int], seconds: float, client: Client, log_dir: Path, flip: int = 0) -> dict[str, Any]:
    """One sweep; the order of the servers alternates with N, and ``flip`` swaps it (odd rounds)."""
    out: dict[str, Any] = {}
    for index, n in enumerate(workers_list):
        order = KINDS if (index + flip) % 2 == 0 else tuple(reversed(KINDS))
        servers: dict[str, Server] = {}
        cell: dict[str, Any] = {"order": [LABEL[k] for k in order]}
        try:
            builds = {k: log_dir / f"builds-{k}-{n}.txt" for k in KINDS}
            for kind in KINDS:
                servers[kind] = start_server(kind, n, NO_EXPIRY, log_dir, builds[kind])
            for kind in KINDS:
                servers[kind].wait_ready()
            for kind in KINDS:
                warm_up(servers[kind], 5 * n)
            for kind in order:
                servers[kind].wait_idle(10)
                log(f"  {n} workers: {LABEL[kind]}, {seconds:g} s ...")
                cell[kind] = part(client, servers[kind], builds[kind], seconds, f"{kind}{n}")
                servers[kind].stop()  # its sessions stay until then: free the machine for the other
                log(f"    {json.dumps(cell[kind])}")
        finally:
            for server in servers.values():
                server.stop()
        out[str(n)] = cell
    return out


def markdown(res: dict[str, Any], facts: dict[str, Any]) -> str:
    m, a = facts["machine"], facts["args"]
    lines = [
        "# Whole sessions at N workers: bokeh-flask vs bokeh serve, multi-process client", "",
        f"Run {facts['started']} by `bench/scaling.py` ({a['seconds']:g} s per server and N, client "
        f"{facts['client_processes']} processes x {a['concurrency']} threads in all). Machine: "
        f"{m.get('nproc')} cores, {m.get('cpu_model')}, shared. A session: page GET (new connection), "
        "websocket (another), ACK, PULL-DOC, one PATCH-DOC round trip, close.", "",
        "| N | server | sessions/s | ratio | p50 ms | p99 ms | builds/session | server cores | "
        "server CPU ms/session | server wait ms/session | client cores (max per process) | "
        "client CPU ms/session | client wait ms/session | other processes' cores | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, cell in res.items():
        for kind in KINDS:
            r = cell[kind]
            ratio = (f"{r['sessions_per_s'] / cell['bokeh']['sessions_per_s']:.2f}x"
                     if kind == "flask" and cell["bokeh"]["sessions_per_s"] else "")
            lines.append(f"| {n} | {LABEL[kind]} | {r['sessions_per_s']} | {ratio} | {r['p50_ms']} | "
                         f"{r['p99_ms']} | {r['builds_per_session']} | {r['server_cores']} | "
                         f"{r['server_cpu_ms_per_session']} | {r['server_wait_ms_per_session']} | "
                         f"{r['client_cores']} ({r['client_cores_per_process_max']}) | "
                         f"{r['client_cpu_ms_per_session']} | {r['client_wait_ms_per_session']} | "
                         f"{r['others_cores']} | {r['errors']} |")
    lines += ["", "Ratio: bokeh-flask sessions/s / bokeh serve sessions/s at the same N. Cores = CPU "
              "seconds / wall seconds of the part (server: the whole process tree; other processes: the "
              f"machine's busy time from /proc/stat less server and client, out of {m.get('nproc')}). "
              "Wait = time the threads spent runnable but waiting for a CPU (/proc/.../schedstat), "
              "summed over the server's processes or the client's threads, per session.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--procs", type=int, default=os.cpu_count() or 1, help="client processes")
    p.add_argument("--concurrency", type=int, default=16, help="client threads in all")
    p.add_argument("--rounds", type=int, default=1, help="repeat the whole sweep")
    p.add_argument("--out", type=Path, default=None, help="write <out>.md and <out>.json")
    args = p.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    log(f"logs in {log_dir}")
    client = Client(max(1, args.procs), args.concurrency)  # forked before any server or thread
    facts: dict[str, Any] = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                             "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                             "client_processes": len(client.procs)}
    try:
        rounds = []
        for i in range(args.rounds):
            (log_dir / f"round{i}").mkdir()
            rounds.append(run(args.workers, args.seconds, client, log_dir / f"round{i}", flip=i % 2))
    finally:
        client.close()
    facts["rounds"] = rounds
    text = "\n\n".join(markdown(r, facts) for r in rounds)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(facts, indent=1, default=str))
        args.out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
