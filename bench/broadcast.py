"""Broadcast latency (issue 25 item 3): from a POST to the last of N sessions updated, on
2 hosts x 2 workers sharing one Redis.

.. code-block:: bash

    .venv-3.12/bin/python bench/broadcast.py --out bench/results/2026-12-07-broadcast.md   # ~2 minutes
    .venv-3.12/bin/python bench/broadcast.py --sessions 100 --posts 5                      # a smaller run

Starts a loopback redis-server (Debian's) and ``--hosts`` gunicorn servers (``gunicorn -c
gunicorn.conf.py``, ``--workers`` each, private directories of their own, all with
``BOKEH_FLASK_REDIS_URL``) serving ``tests/http/apps/broadcast_host.py``: its ``/push``
route calls ``bokeh_flask.broadcast("/target", "value", ...)``, whose handler sets a Div's
text. Opens ``--sessions`` tabs (page, websocket, ACK, pull: :mod:`bench.client`), spread
evenly over the hosts. Then ``--posts`` times, alternating hosts: POST a new value and
wait until every websocket has received the PATCH-DOC carrying it; the latency of a POST
is from just before the request to the arrival of the last of those PATCH-DOCs here (one
client process reading 1,000 sockets, so its own reading is included: an upper bound).
``--no-redis --hosts 1`` measures the host channel (SQLite polled every 50 ms) instead.

``bokeh serve`` has no counterpart (its ``update_sessions`` reaches one process), so no
ratio: the goal is p99 < 250 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from client import Session  # noqa: E402

from tests.support.servers import BIN, free_port, start_redis  # noqa: E402

HOST_APP = ROOT / "tests" / "http" / "apps" / "broadcast_host.py"


def start_host(index: int, workers: int, redis_url: str | None, tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    env.update({"PYTHONUNBUFFERED": "1", "BOKEH_FLASK_WORKERS": str(workers), "BOKEH_DEFAULT_SERVER_PORT": str(port),
                "BOKEH_FLASK_STATE_DIR": str(tmp / f"host-{index}"), "BOKEH_PY_LOG_LEVEL": "warning"})
    if redis_url:
        env["BOKEH_FLASK_REDIS_URL"] = redis_url
    log = open(tmp / f"host-{index}.log", "wb")
    process = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}",
                                "--chdir", str(HOST_APP.parent), "broadcast_host:app"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process, port
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"host {index} did not start: {(tmp / f'host-{index}.log').read_text()[-2000:]}")


def wait_all(sessions: list[Session], value: str, timeout: float) -> float:
    """Read every websocket until each has the PATCH-DOC carrying ``value``; the time the
    last one arrived (``time.perf_counter``)."""
    waiting = {s.ws.sock.fileno(): s for s in sessions}
    needle = json.dumps(value)
    selector = selectors.DefaultSelector()
    for fd in waiting:
        selector.register(fd, selectors.EVENT_READ)
    last = 0.0
    deadline = time.monotonic() + timeout
    try:
        while waiting:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} sessions never got {value!r}")
            for key, _ in selector.select(timeout=1.0):
                session = waiting.get(key.fd)
                if session is None:
                    continue
                msg = session.ws.recv_msg()
                while session.ws.buf and needle not in json.dumps(msg.content):
                    msg = session.ws.recv_msg()
                if msg.msgtype == "PATCH-DOC" and needle in json.dumps(msg.content):
                    last = time.perf_counter()
                    del waiting[key.fd]
                    selector.unregister(key.fd)
    finally:
        selector.close()
    return last


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def run(args: argparse.Namespace) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="bench-broadcast-"))
    redis = None
    hosts: list[tuple[subprocess.Popen, int]] = []
    sessions: list[Session] = []
    try:
        redis_url = None
        if not args.no_redis:
            redis, redis_url = start_redis()
        hosts = [start_host(i, args.workers, redis_url, tmp) for i in range(args.hosts)]
        started = time.monotonic()
        for i in range(args.sessions):
            sessions.append(Session("127.0.0.1", hosts[i % len(hosts)][1], "target"))
        opened = time.monotonic() - started
        latencies: list[float] = []
        with requests.Session() as client:
            for i in range(args.warmup + args.posts):
                value = f"value {i}"
                port = hosts[i % len(hosts)][1]
                sent = time.perf_counter()
                answer = client.post(f"http://127.0.0.1:{port}/push", data={"value": value}, timeout=30)
                answer.raise_for_status()
                last = wait_all(sessions, value, args.timeout)
                if i >= args.warmup:
                    latencies.append(last - sent)
                time.sleep(args.pause)
        return {"sessions": args.sessions, "hosts": args.hosts, "workers": args.workers,
                "channel": "host store (SQLite)" if args.no_redis else "Redis pub/sub",
                "posts": args.posts, "open_seconds": opened, "latencies": latencies}
    finally:
        for session in sessions:
            session.close()
        for process, _ in hosts:
            os.killpg(process.pid, signal.SIGTERM)
        for process, _ in hosts:
            process.wait(timeout=30)
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)


def report(result: dict) -> str:
    ms = [x * 1000 for x in result["latencies"]]
    return "\n".join([
        f"| {result['hosts']} x {result['workers']} | {result['channel']} | {result['sessions']} | "
        f"{result['posts']} | {statistics.median(ms):.0f} | {percentile(ms, 0.99):.0f} | {max(ms):.0f} | "
        f"{min(ms):.0f} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="POSTs before the measured ones")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between POSTs")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--no-redis", action="store_true", help="the host channel instead of Redis")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    row = report(result)
    print("| hosts x workers | channel | sessions | POSTs | p50 ms | p99 ms | max ms | min ms |")
    print(row)
    print(f"(opening the sessions took {result['open_seconds']:.1f} s; {platform.node()}, {os.cpu_count()} cores)")
    if args.out:
        with args.out.open("a") as out:
            out.write(row + "\n")


if __name__ == "__main__":
    main()
