"""Running the ``bokeh-flask`` command as a user does, for the CLI tests: a clean
environment, a run that cannot hang the suite, and the one-line error a bad start-up
setting must give."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.support.servers import APPS, BIN, ROOT

BOKEH_FLASK = str(BIN / "bokeh-flask")
HELLO = APPS / "hello.py"


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    env.update(extra)
    return env


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``bokeh-flask ARGS``; if it unexpectedly starts serving, kill its whole group."""
    process = subprocess.Popen([BOKEH_FLASK, *args], cwd=ROOT, env=env or clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"bokeh-flask {' '.join(args)} did not exit within {timeout}s:\n{err}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def assert_one_line_error(result, needle: str):
    """A refused start-up: exit 2 with one ``bokeh-flask: error:`` line (as argparse's own)
    that names ``needle``, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bokeh-flask: error:"), lines[0]
    assert needle in lines[0], lines[0]
