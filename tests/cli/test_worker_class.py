"""gunicorn worker classes that cannot hold websockets (sync, gthread) are refused at start:
one line naming ``-k gevent``, and gunicorn stops instead of respawning the worker."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import servers

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
LINE = "bokeh-flask needs gunicorn's gevent worker: run with -k gevent (or -c gunicorn.conf.py)"
HOST_APP = """\
from gevent import monkey; monkey.patch_all()
from flask import Flask
from bokeh_flask import BokehServer

app = Flask(__name__)
BokehServer(app, apps={"/hello": "hello.py"}, url_prefix="/bokeh")
"""


def run_gunicorn(args: list[str], cwd: Path, timeout: float = 45) -> tuple[int, str, float]:
    """``gunicorn ARGS`` on a free loopback port; its exit status, output and run time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    env["GUNICORN_CMD_ARGS"] = "--no-control-socket"  # one fixed path per user otherwise
    started = time.monotonic()
    try:
        result = subprocess.run([GUNICORN, "-b", f"127.0.0.1:{servers.free_port()}", *args], cwd=cwd,
                                env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"gunicorn {' '.join(args)} still running after {timeout}s:\n{exc.stderr}")
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def host_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("host")
    (project / "app.py").write_text(HOST_APP)
    (project / "hello.py").write_text((servers.APPS / "hello.py").read_text())
    return project


@pytest.mark.parametrize("worker", [["-k", "sync"], ["-k", "gthread"], ["--threads", "4"],
                                    ["-k", "sync", "-w", "2"], ["-k", "sync", "--preload"]],
                         ids=["sync", "gthread", "threads", "sync-2-workers", "preload"])
def test_host_app_refuses_workers_without_websockets(host_project: Path, worker: list[str]) -> None:
    status, output, took = run_gunicorn([*worker, "app:app"], host_project)
    assert status != 0, output
    assert LINE in output
    # no traceback through our code or the host's app.py (with -w 2 gunicorn itself may
    # print one of its own while it halts: its wsgiapp.py is not ours)
    roots = tuple(str(servers.ROOT / part) for part in ("app", "blueprints", "bokeh_flask"))
    ours = [line for line in output.splitlines() if 'File "' in line
            and (line.split('"')[1].startswith(roots) or line.split('"')[1].endswith("/app.py"))]
    assert not ours, "a traceback through our code:\n" + output
    if "-w" not in worker:
        # with several workers failing at once, gunicorn's own halt may raise HaltServer
        # again while reaping the second (a traceback of gunicorn's, exit status 1)
        assert "Traceback" not in output, output
    assert "Booting worker" not in output.split(LINE, 1)[1], "gunicorn respawned the worker"
    assert took < 30


def test_standalone_wsgi_refuses_sync_worker() -> None:
    status, output, _ = run_gunicorn(["-k", "sync", "wsgi:app"], servers.ROOT)
    assert status == 3, output
    assert f"bokeh-flask: error: {LINE}" in output
    assert "Traceback" not in output, output
