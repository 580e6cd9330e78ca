"""``--admin`` (issue 17 item 4), over HTTP: off by default; on, the page is one of the apps,
each process writes its stats file (a single-process directory under ``flask run``), and an
app of the user's at ``/admin`` is refused at start. The page in a browser, with two
workers, is tests/browser/test_admin_browser.py; behind an auth module, tests/auth/test_auth_admin.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

from bokeh_flask.app.config import state_dir
from bokeh_flask.app.runtime import worker_stats
from tests.support import servers
from tests.support.http import get, page_token
from tests.support.servers import APPS

HELLO = APPS / "hello.py"


def test_off_by_default(server):
    assert get(server, "/admin").status_code == 404
    assert get(server, "/admin/metadata").status_code == 404


def test_flask_run_serves_it_and_writes_its_own_stats_file(start_server):
    server = start_server("flask", apps=[HELLO], env={"BOKEH_FLASK_ADMIN": "1"})
    page = get(server, "/admin")
    assert page.status_code == 200 and "bokeh-flask admin" in page.text
    page_token(page.text)  # a doc page like any app's
    get(server, "/hello")
    # no master: the process's own, in the default private directory
    directory = worker_stats._dir_for(state_dir.default_state_dir(), server.process.pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = worker_stats.read_workers(directory)
        if records and records[0]["apps"]["/hello"]["sessions"] == 1:
            break
        time.sleep(0.1)
    assert [r["pid"] for r in records] == [server.process.pid]
    assert records[0]["apps"]["/hello"]["sessions"] == 1
    assert records[0]["apps"]["/admin"]["sessions"] == 1
    assert records[0]["rss_mib"] > 0
    server.stop()  # SIGTERM: flask run exits without atexit, its file stays behind...
    assert worker_stats.read_workers(directory) == []  # ...and readers skip a dead pid's
    shutil.rmtree(directory)


def test_an_app_at_admin_is_refused(tmp_path):
    app = tmp_path / "admin.py"
    app.write_text("from bokeh.io import curdoc\ncurdoc().title = 'mine'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    result = subprocess.run([str(servers.BIN / "bokeh-flask"), "serve", str(app), "--admin",
                             "--port", str(servers.free_port())],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "--admin: an app is already served at /admin" in result.stderr
    assert "Traceback" not in result.stderr
