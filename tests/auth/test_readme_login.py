"""README.md's "Flask-Login, standalone" run as written: its ``loginapp.py`` goes into a fresh
folder beside a Bokeh app ``hello.py``, its command starts it (only the port changes), and a
user logs in through the form and gets the app's page and websocket."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import requests

from tests.support.auth import BokehSocket, cookie_header, login, page_token
from tests.support.servers import APPS, BIN, ROOT, free_port

SECTION = "**Flask-Login, standalone.**"


def readme_blocks() -> tuple[str, str]:
    """The section's Python file and its shell command."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip()
    return python, command


def test_the_readme_login_app_runs_as_written(tmp_path):
    python, command = readme_blocks()
    (tmp_path / "loginapp.py").write_text(python)
    (tmp_path / "hello.py").write_text((APPS / "hello.py").read_text())
    port = free_port()
    assert "5006" in command
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    env["PATH"] = f"{BIN}:{env['PATH']}"  # bokeh-flask and gunicorn as a user's venv has them
    process = subprocess.Popen(["bash", "-c", command.replace("5006", str(port))], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                anonymous = requests.get(base + "/hello", timeout=15, allow_redirects=False)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
                time.sleep(0.1)
        assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
        alice = login(base, "alice", "wonderland")
        token = page_token(alice, base + "/hello")  # the app page, logged in
        socket = BokehSocket(f"ws://127.0.0.1:{port}/hello/ws", token, cookie_header(alice))
        socket.ws.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
