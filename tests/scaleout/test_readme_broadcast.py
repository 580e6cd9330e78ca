"""README.md's broadcast example run as written: its ``dashboard.py`` and ``pushapp.py`` go
into a fresh folder with a copy of ``gunicorn.conf.py``, its command starts two workers
(only the port changes), and its curl POST (sent with requests) reaches every tab of every
worker as a PATCH-DOC of the source's data. Without Redis: the host channel."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import requests
from bokeh.util.token import get_token_payload

from tests.support.servers import BIN, ROOT, free_port
from tests.support.wire import BokehWS, Msg, map_entries, model_by_name, page_token

SECTION = "### Updating every session on every worker and host (`broadcast`)"


def readme_blocks() -> tuple[str, str, str]:
    """The section's two Python files and its shell commands."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    dashboard, pushapp = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip()
    return dashboard, pushapp, commands


def data_changes(msgs: list[Msg], source: str) -> list[dict]:
    """Bokeh's event for a ColumnDataSource's ``data`` replaced."""
    return [e for m in msgs for e in m.events if e.get("kind") == "ColumnDataChanged" and e["model"]["id"] == source]


def test_the_readme_broadcast_reaches_every_tab_of_both_workers(tmp_path):
    dashboard, pushapp, commands = readme_blocks()
    copy, start, post = commands.splitlines()
    assert copy.startswith("cp ") and "gunicorn.conf.py" in copy and "5006" in start
    (tmp_path / "dashboard.py").write_text(dashboard)
    (tmp_path / "pushapp.py").write_text(pushapp)
    shutil.copy(ROOT / "gunicorn.conf.py", tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    env["BOKEH_FLASK_STATE_DIR"] = str(tmp_path / "state")
    process = subprocess.Popen(["bash", "-c", start.replace("5006", str(port))], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    sockets: list[tuple[BokehWS, str]] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/dashboard", timeout=30)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
                time.sleep(0.1)
        owners: list[str] = []
        while len(set(owners)) < 2:  # tabs of sessions of both workers
            assert len(owners) < 40, owners
            token = page_token(base, "dashboard")
            owners.append(get_token_payload(token)["bokeh_flask_worker"])
            ws = BokehWS(f"ws://127.0.0.1:{port}/dashboard/ws", token)
            sockets.append((ws, model_by_name(ws.pull().content["doc"], "prices")["id"]))
        body = re.search(r"-d '(.*?)'", post).group(1)
        answer = requests.post(base + "/prices", data=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["updated_here"] >= 1
        for ws, source in sockets:
            changes = data_changes(ws.recv_until(lambda m: bool(data_changes([m], source))), source)
            assert map_entries(changes[-1]["data"]) == {"x": [1, 2, 3], "y": [3, 1, 2]}
        refused = requests.post(base + "/prices", json={"x": [1]}, timeout=30)
        assert refused.status_code == 400
    finally:
        for ws, _ in sockets:
            ws.close()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
