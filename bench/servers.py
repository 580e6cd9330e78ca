"""Start and stop the two servers under test, and read their CPU time and memory from /proc.

Each server runs in its own process group (``start_new_session``) on a loopback port, with
its output in a log file; :meth:`Server.stop` ends the whole group (SIGTERM, then SIGKILL).
"""
from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from client import HTTP

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the virtualenv running the bench (make builds .venv-<python>)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

#: In-process timing of the app's code (measure 5), loaded by path: it is the servers' sitecustomize.
APP_TIMER_PATH = ROOT / "bench" / "inprocess"
_spec = importlib.util.spec_from_file_location("app_timer", APP_TIMER_PATH / "sitecustomize.py")
app_timer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(app_timer)

KINDS = ("flask", "bokeh")
LABEL = {"flask": "bokeh-flask", "bokeh": "bokeh serve"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- /proc -------------------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # the command name may contain spaces: fields start after the last ')'
    return text[text.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return kids


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    for _ in range(10000):
        if not todo:
            break
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # after the ')' the fields are numbered from 3 (state): utime is field 14, stime 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- servers -----------------------------------------------------------------------------------

class Server:
    """One server under test: ``kind`` is ``flask`` (bokeh-flask serve) or ``bokeh`` (bokeh serve)."""

    def __init__(self, kind: str, apps: list[str], workers: int = 1, extra: list[str] | None = None,
                 log_dir: Path | None = None, app_timer_dir: Path | None = None) -> None:
        self.kind = kind
        self.label = LABEL[kind]
        self.apps = apps
        self.workers = workers
        self.extra = list(extra or [])
        self.port = free_port()
        self.host = "127.0.0.1"
        self.log_path = (log_dir or Path("/tmp")) / f"{kind}-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        #: where the servers' processes record the app's own CPU time (see bench/inprocess)
        self.app_timer_dir = app_timer_dir

    def command(self) -> list[str]:
        common = ["--address", self.host, "--port", str(self.port),
                  "--allow-websocket-origin", f"{self.host}:{self.port}", *self.extra]
        if self.kind == "flask":
            cmd = [str(BIN / "bokeh-flask"), "serve", *self.apps, *common]
            if self.workers != 1:
                cmd += ["--workers", str(self.workers)]
        else:
            cmd = [str(BIN / "bokeh"), "serve", *self.apps, *common]
            if self.workers != 1:
                cmd += ["--num-procs", str(self.workers)]
        return cmd

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
        env["PYTHONUNBUFFERED"] = "1"
        if self.app_timer_dir is not None:
            self.app_timer_dir.mkdir(parents=True, exist_ok=True)
            env["PYTHONPATH"] = str(APP_TIMER_PATH)
            env["BENCH_APP_TIMER_DIR"] = str(self.app_timer_dir)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if len(self.worker_pids()) >= self.workers:
                try:
                    http = HTTP(self.host, self.port, timeout=2)
                    status, _, _ = http.get("/favicon.ico")
                    http.close()
                    if status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} did not answer within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # processes
    @property
    def pid(self) -> int:
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        """Processes that serve requests: gunicorn's workers, or bokeh serve itself (its forked
        children with --num-procs)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        kids = children(self.pid)
        if self.kind == "flask":
            return kids
        return kids if self.workers != 1 else [self.pid]

    def cpu(self) -> float:
        """CPU seconds of the whole server process tree."""
        return sum(cpu_seconds(p) for p in tree(self.pid))

    def app_time(self) -> tuple[float, float, float, float]:
        """The app's own code in the serving processes so far: calls of
        ``initialize_document``, their CPU seconds, the full collections left out of them,
        and the longest full collection (CPU seconds)."""
        if self.app_timer_dir is None:
            return 0.0, 0.0, 0.0, 0.0
        return app_timer.read(str(self.app_timer_dir), self.worker_pids())

    def rss(self) -> int:
        """RSS of the (single) serving process."""
        pids = self.worker_pids()
        return sum(rss_bytes(p) for p in pids)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        # leftovers of the group (workers, forked children) go too
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def wait_idle(self, timeout: float = 30.0, window: float = 0.5, threshold: float = 0.08) -> float:
        """Wait until the server tree uses < ``threshold`` of a core over ``window`` seconds
        (e.g. expiring sessions from a previous step has finished). Returns seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            c0 = self.cpu()
            time.sleep(window)
            if self.cpu() - c0 < threshold * window:
                break
        return time.monotonic() - t0


def start_pair(apps: list[str], workers: int = 1, extra: list[str] | None = None,
               log_dir: Path | None = None, app_timer: bool = False) -> dict[str, Server]:
    """Both servers, started together (the caller stops them in ``finally``); ``app_timer``
    has them record the app's own CPU time (each in a directory of its own under ``log_dir``)."""
    base = log_dir or Path("/tmp")
    servers = {k: Server(k, apps, workers, extra, log_dir, base / f"app-timer-{k}" if app_timer else None)
               for k in KINDS}
    try:
        for s in servers.values():
            s.start()
        for s in servers.values():
            s.wait_ready()
    except BaseException:
        for s in servers.values():
            s.stop()
        raise
    return servers


def smaps_rollup(pid: int) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` in bytes (Rss, Pss, Private_Clean, ...); empty if gone.

    PSS charges each shared page to its sharers in parts: summed over a server's processes it
    is what the server costs, where RSS counts the pages a fork shares once per process."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    except OSError:
        pass
    return out


def open_fds(pid: int) -> dict[str, str]:
    """Descriptor -> what it points at (``socket:[inode]``, a path, ``anon_inode:...``)."""
    out: dict[str, str] = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in names:
        try:
            out[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return out


def run_queue_wait(pid: int) -> float:
    """Seconds the threads of ``pid`` have waited, runnable, for a CPU (``schedstat``'s second
    field): on a shared machine, what other processes took from this one."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def smaps_by_mapping(pid: int) -> dict[str, dict[str, int]]:
    """``/proc/PID/smaps`` summed by what is mapped: ``[heap]`` (malloc's brk heap), ``anon``
    (anonymous mmaps: pymalloc's arenas, large objects, thread stacks), ``[stack]``, and files
    by name with pid digits made generic. Rss, Pss and private bytes per kind."""
    out: dict[str, dict[str, int]] = {}
    kind = "?"
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split(None, 6)
                if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                    name = head[5].strip() if len(head) > 5 else ""
                    kind = ("anon" if not name else name if name.startswith("[")
                            else re.sub(r"\d+", "N", os.path.basename(name)))
                    continue
                key = head[0].rstrip(":")
                if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                    entry = out.setdefault(kind, {"Rss": 0, "Pss": 0, "Private": 0})
                    entry["Private" if key.startswith("Private") else key] += int(head[1]) * 1024
    except OSError:
        pass
    return out
