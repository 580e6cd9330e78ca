"""Token bombs (issue 21, item 4): another session's round trip while four clients send
zlib-bomb tokens, bokeh-flask and ``bokeh serve`` side by side in one run.

.. code-block:: bash

    .venv-3.12/bin/python bench/token_bomb.py                   # ~1 minute
    .venv-3.12/bin/python bench/token_bomb.py --seconds 5 --out /tmp/bomb.md

Both servers serve ``bench/apps/trivial.py``, started together, defaults otherwise (no
auth, unsigned ids). Per server, in turn: one session (page, websocket, PULL) does
``--quiet`` round trips (PATCH-DOC setting the TextInput -> the Div's PATCH-DOC back) alone,
then goes on with round trips while four attacker threads each open websockets back to back
for ``--seconds`` (at most ``--max-bombs`` each), offering a bomb token as the subprotocol.
Two threads send the finding's token (57 KB, inflating to 32 MiB of JSON), two the densest
bomb under bokeh-flask's 32 KiB length limit (17 MiB). An attacker reads the answer's status
line and closes. Measured: the round trip's p50/p99/max, alone and under the bombs; the
answers the bombs got; the serving process's RSS before and its peak (``VmHWM``, reset
through ``/proc/PID/clear_refs`` just before the attack). Target: p99 under the bombs
< 100 ms for bokeh-flask. Every client socket has TCP_NODELAY and re-arms TCP_QUICKACK, so
``bokeh serve``'s small frames do not wait on a delayed ACK (README, note on 1/2).
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import socket
import statistics
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client import TIMEOUT, RoundTripper, Session, nodelay  # noqa: E402
from servers import KINDS, LABEL, ROOT, start_pair  # noqa: E402

APP = str(ROOT / "bench" / "apps" / "trivial.py")
#: The finding's bomb, and the densest one within bokeh-flask's length limit.
BOMBS = {"57 KB": 32 * 1024 * 1024, "31 KB": 17 * 1024 * 1024}
ATTACKERS = 4
TARGET_P99_MS = 100.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def bomb(inflated: int) -> str:
    """An unsigned Bokeh token whose payload inflates to ``inflated`` bytes of JSON."""
    text = b'{"headers": {"X": "' + b"a" * inflated + b'"}}'
    head = {"session_id": "bomb", "session_expiry": 4102444800, "__bk__zlib_": _b64(zlib.compress(text, 9))}
    return _b64(json.dumps(head).encode())


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def send_bomb(host: str, port: int, token: str) -> str:
    """One handshake with ``token``; the answer's status code, or what went wrong."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            nodelay(sock)
            sock.sendall((f"GET /trivial/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dG9rZW4tYm9tYi1iZW5jaCE=\r\n"
                          f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n"
                          f"Sec-WebSocket-Protocol: bokeh, {token}\r\n\r\n").encode("ascii"))
            head = b""
            while b"\r\n" not in head and len(head) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    return "closed"
                head += chunk
            return head.split(b" ", 2)[1].decode("ascii", "replace")
    except OSError as exc:
        return type(exc).__name__


def percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def measure(server: Any, quiet: int, seconds: float, max_bombs: int) -> dict[str, Any]:
    session = Session(server.host, server.port, "trivial", quickack=True)
    try:
        tripper = RoundTripper(session, "bomb")
        for _ in range(20):
            tripper.once()
        alone = [tripper.once() for _ in range(quiet)]
        (pid,) = server.worker_pids()
        with open(f"/proc/{pid}/clear_refs", "w") as file:
            file.write("5")  # VmHWM := VmRSS
        rss_before = status_kib(pid, "VmRSS")
        answers: collections.Counter[str] = collections.Counter()
        tokens = [bomb(size) for size in BOMBS.values()]
        deadline = time.monotonic() + seconds
        start = threading.Barrier(ATTACKERS + 1)

        def attack(token: str) -> None:
            start.wait()
            for _ in range(max_bombs):
                if time.monotonic() >= deadline:
                    break
                answers[send_bomb(server.host, server.port, token)] += 1

        threads = [threading.Thread(target=attack, args=(tokens[i % len(tokens)],), daemon=True)
                   for i in range(ATTACKERS)]
        for thread in threads:
            thread.start()
        start.wait()
        attacked = []
        while any(thread.is_alive() for thread in threads):
            attacked.append(tripper.once())
        for thread in threads:
            thread.join()
        peak = status_kib(pid, "VmHWM")
    finally:
        session.close()
    return {"alone": percentiles(alone), "bombs": percentiles(attacked), "answers": dict(answers),
            "rss_before_mib": round(rss_before / 1024, 1), "rss_peak_mib": round(peak / 1024, 1)}


def run(quiet: int, seconds: float, max_bombs: int, log_dir: Path) -> dict[str, dict[str, Any]]:
    servers = start_pair([APP], log_dir=log_dir)
    results: dict[str, dict[str, Any]] = {}
    try:
        for kind in KINDS:
            print(f"  {LABEL[kind]} ...", file=sys.stderr, flush=True)
            results[kind] = measure(servers[kind], quiet, seconds, max_bombs)
            servers[kind].stop()  # its leftovers must not slow the other's part
    finally:
        for server in servers.values():
            server.stop()
    return results


def report(results: dict[str, dict[str, Any]], quiet: int, seconds: float, max_bombs: int) -> str:
    sizes = ", ".join(f"{label} -> {size // 2**20} MiB" for label, size in BOMBS.items())
    f, b = (results[k] for k in KINDS)
    lines = [f"# Token bombs: another session's round trip under {ATTACKERS} concurrent bombs "
             f"({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"`bench/token_bomb.py --quiet {quiet} --seconds {seconds:g} --max-bombs {max_bombs}`: "
             f"bombs {sizes} (token length -> inflated payload), {ATTACKERS} attackers back to back; "
             "see the module's docstring. Ratio: bokeh-flask / bokeh serve.", "",
             "| measure | bokeh-flask | bokeh serve | ratio | target | met |", "|---|---|---|---|---|---|"]

    def row(name: str, fv: float, bv: float, unit: str, target: str = "", met: str = "") -> None:
        lines.append(f"| {name} | {fv} {unit} | {bv} {unit} | {fv / bv:.2f}x | {target} | {met} |")

    row("round trip p50 alone", f["alone"]["p50_ms"], b["alone"]["p50_ms"], "ms")
    row("round trip p99 alone", f["alone"]["p99_ms"], b["alone"]["p99_ms"], "ms")
    row("round trip p50 under bombs", f["bombs"]["p50_ms"], b["bombs"]["p50_ms"], "ms")
    p99 = f["bombs"]["p99_ms"]
    row("round trip p99 under bombs", p99, b["bombs"]["p99_ms"], "ms", f"< {TARGET_P99_MS:g} ms",
        "yes" if p99 < TARGET_P99_MS else "no")
    row("round trip max under bombs", f["bombs"]["max_ms"], b["bombs"]["max_ms"], "ms")
    lines.append(f"| round trips under bombs | {f['bombs']['n']} | {b['bombs']['n']} | | | |")
    row("RSS before the bombs", f["rss_before_mib"], b["rss_before_mib"], "MiB")
    row("peak RSS during the bombs", f["rss_peak_mib"], b["rss_peak_mib"], "MiB")
    lines.append(f"| peak - before | +{f['rss_peak_mib'] - f['rss_before_mib']:.1f} MiB "
                 f"| +{b['rss_peak_mib'] - b['rss_before_mib']:.1f} MiB | | <= +32 MiB (tests) | "
                 f"{'yes' if f['rss_peak_mib'] - f['rss_before_mib'] <= 32 else 'no'} |")
    answers = {k: ", ".join(f"{n} x {status}" for status, n in sorted(results[k]["answers"].items())) for k in KINDS}
    lines.append(f"| bombs' answers | {answers['flask']} | {answers['bokeh']} | | 4xx | "
                 f"{'yes' if all(s.startswith('4') for s in f['answers']) else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", type=int, default=300, help="round trips without bombs (default 300)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the bombs go on (default 15)")
    parser.add_argument("--max-bombs", type=int, default=2000, help="most bombs per attacker (default 2000)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    log_dir = Path(__import__("tempfile").mkdtemp(prefix="bench-token-bomb-"))
    print(f"server logs in {log_dir}", file=sys.stderr)
    results = run(args.quiet, args.seconds, args.max_bombs, log_dir)
    text = report(results, args.quiet, args.seconds, args.max_bombs)
    text += "\n## Raw figures\n\n```json\n" + json.dumps(results, indent=1) + "\n```\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
