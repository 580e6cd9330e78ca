"""Real bokeh-flask servers on loopback, started as a user starts them (shared by all suites).

``launch(kind, apps=[...], env={...}, args=[...])`` runs one of
  - ``gunicorn``: ``gunicorn -c gunicorn.conf.py wsgi:app`` (gevent worker),
  - ``flask``:    ``flask --app wsgi run``,
  - ``cli``:      ``bokeh-flask serve APPS... --port N``,
  - ``bokeh``:    upstream ``bokeh serve`` (for side-by-side checks),
on a free loopback port, waits until it answers HTTP, and stops it at teardown.
The server's combined output is kept in ``server.log_text()`` for assertions.
``spawn`` starts any other server process the same way (nginx, the auth and host-app servers).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "apps"
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = "/usr/bin/chromium"
REDIS_SERVER = Path("/usr/bin/redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    kind: str
    port: int
    process: subprocess.Popen
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The gunicorn master's live workers (its child processes), for gunicorn and cli kinds."""
        pid = self.process.pid
        return sorted(int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in server log:\n{self.log_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def _command(kind: str, port: int, apps: list[str], args: list[str]) -> list[str]:
    if kind == "gunicorn":
        return [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
                "-b", f"127.0.0.1:{port}", *args, "wsgi:app"]
    if kind == "flask":
        return [str(BIN / "flask"), "--app", "wsgi", "run", "--host", "127.0.0.1",
                "--port", str(port), *args]
    if kind == "cli":
        return [str(BIN / "bokeh-flask"), "serve", *apps, "--address", "127.0.0.1",
                "--port", str(port), *args]
    if kind == "bokeh":
        return [str(BIN / "bokeh"), "serve", *apps, "--address", "127.0.0.1",
                "--port", str(port), *args]
    raise ValueError(kind)


#: ``python -c _WITH_OPEN_FILES N COMMAND...``: run COMMAND with at most N open files.
_WITH_OPEN_FILES = ("import os, resource, sys; n = int(sys.argv[1]); "
                    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])")


def launch(kind: str, apps: list[str | Path] | None = None, env: dict | None = None,
           args: list[str] | None = None, wait_path: str = "/", timeout: float = 60.0,
           cwd: Path = ROOT, open_files: int | None = None, port: int | None = None) -> Server:
    """Start a server from ``cwd`` and wait until ``wait_path`` answers (any status below 500);
    ``open_files`` sets its open-files limit (soft and hard, so gunicorn cannot raise it);
    ``port``: a given one (a host started again behind a proxy), else a free one."""
    port = port or free_port()
    app_paths = [str(a) for a in (apps or [])]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    full_env.update({"PYTHONUNBUFFERED": "1"})
    if app_paths and kind in ("gunicorn", "flask"):
        full_env["BOKEH_APPS"] = os.pathsep.join(app_paths)
    if kind in ("gunicorn", "flask"):
        # the default allowlist is localhost:<port>; tests also use 127.0.0.1
        full_env.setdefault("BOKEH_DEFAULT_SERVER_PORT", str(port))
    full_env.update(env or {})
    command = _command(kind, port, app_paths, list(args or []))
    if open_files is not None:
        command = [sys.executable, "-c", _WITH_OPEN_FILES, str(open_files), *command]
    return spawn(kind, command, port, full_env,
                 ready=lambda status: status < 500, ready_path=wait_path, timeout=timeout, cwd=cwd)


def spawn(kind: str, command: list[str], port: int, env: dict, ready: Callable[[int], bool],
          ready_path: str = "/", timeout: float = 60.0, cwd: Path = ROOT,
          log_path: Path | None = None) -> Server:
    """Run ``command`` in its own process group, output to a log file, and wait until
    ``GET ready_path`` answers with a status ``ready`` accepts; fail with the log if it
    exits or does not answer in time."""
    log = log_path or Path(tempfile.mkstemp(prefix=f"bokeh-flask-{kind}-", suffix=".log")[1])
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(kind, port, process, log, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode}:\n{server.log_text()}")
        try:
            if ready(requests.get(server.url + ready_path, timeout=2, allow_redirects=False).status_code):
                return server
        except requests.RequestException:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{kind} did not answer within {timeout}s:\n{server.log_text()}")


def chromium_available() -> bool:
    return Path(CHROMIUM).exists()


def start_redis(timeout: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Debian's redis-server on a free loopback port, in a temp directory, persisting
    nothing; returns the process and its ``redis://`` URL once it answers PING."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bokeh-flask-redis-")
    process = subprocess.Popen([str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", workdir],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout}s")
