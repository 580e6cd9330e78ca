"""The test command as a user meets it: a run stopped by SIGTERM (a ``kill``, a CI timeout)
leaves no server behind, as Ctrl-C does not."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.servers import ROOT

PROBE = Path(__file__).resolve().parent / "apps" / "sigterm_probe.py"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_stops_the_servers_a_test_run_started(tmp_path):
    pids_file = tmp_path / "pids"
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PROBE)],
                           cwd=ROOT, env={**os.environ, "PROBE_PIDS": str(pids_file)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while not (pids_file.exists() and pids_file.read_text().strip()):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0]
        time.sleep(0.1)
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert all(alive(pid) for pid in pids)
    run.send_signal(signal.SIGTERM)
    output = run.communicate(timeout=60)[0].decode()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)], output
