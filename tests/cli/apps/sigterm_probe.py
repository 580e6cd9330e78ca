"""Run by tests/cli/test_test_run.py as pytest's only test: starts a server, writes its
pid, then waits to be stopped by a SIGTERM to the test run."""
import os
import time

from tests.support.servers import APPS, launch


def test_waits_with_a_server_running():
    server = launch("gunicorn", apps=[APPS / "hello.py"])
    try:
        with open(os.environ["PROBE_PIDS"], "w") as file:
            file.write(" ".join(map(str, [server.process.pid, *server.worker_pids()])))
        time.sleep(120)  # stopped long before: the SIGTERM is the point
    finally:
        server.stop()
