"""The README's deployment recipes, run as written (issue 17 item 5).

Each test reads its block from README.md, so the documented recipe and the tested one cannot
drift apart; only the port (a free loopback port instead of 5006) and the pid file (a
temporary one instead of ``/run/bokeh-flask.pid``) are replaced:

- the Kubernetes probes: the container's command serves both probe paths with ``200 ok``,
  and the grace period outlasts gunicorn's graceful timeout;
- the rolling restart: the start command, then the ``kill -HUP`` line through bash: every
  open websocket is closed with 1001, all workers are new, and sessions work on them;
- the Prometheus scrape config: its path with its credentials file's token gets the
  metrics, and no token gets 401.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import time

import requests
import yaml

from bokeh_flask.app.process.gunicorn_config import gunicorn_options
from tests.support.http import TIMEOUT
from tests.support.servers import APPS, ROOT, launch
from tests.support.wire import BokehWS, page_token, parse_close

README = (ROOT / "README.md").read_text()
HELLO = APPS / "hello.py"
PID_FILE = "/run/bokeh-flask.pid"


def readme_block(language: str, containing: str) -> str:
    """The README's one fenced ``language`` block that contains ``containing``."""
    blocks = [b for b in re.findall(rf"^```{language}\n(.*?)^```", README, re.M | re.S) if containing in b]
    assert len(blocks) == 1, f"expected one ```{language} block with {containing!r} in README.md, found {len(blocks)}"
    return blocks[0]


def test_kubernetes_probes_as_written():
    spec = yaml.safe_load(readme_block("yaml", "livenessProbe"))["spec"]
    container = spec["containers"][0]
    assert container["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    port = container["ports"][0]["containerPort"]
    assert spec["terminationGracePeriodSeconds"] > gunicorn_options()["graceful_timeout"]
    server = launch("gunicorn", apps=[HELLO])  # that command, on a free port instead of 5006
    try:
        for probe in ("livenessProbe", "readinessProbe"):
            target = container[probe]["httpGet"]
            assert target["port"] == port
            response = requests.get(f"{server.url}{target['path']}", timeout=TIMEOUT)
            assert (response.status_code, response.text) == (200, "ok\n"), (probe, response.status_code)
    finally:
        server.stop()


def test_rolling_restart_commands_as_written(tmp_path):
    start, reload = (line.split("#")[0].strip() for line in readme_block("bash", "kill -HUP").splitlines())
    pid_file = tmp_path / "bokeh-flask.pid"
    command = shlex.split(start.replace(PID_FILE, str(pid_file)))
    assert command[:3] == ["gunicorn", "-c", "gunicorn.conf.py"] and command[-1] == "wsgi:app"
    server = launch("gunicorn", apps=[HELLO], args=command[3:-1], env={"BOKEH_FLASK_WORKERS": "2"})
    sockets: list[BokehWS] = []
    try:
        assert int(pid_file.read_text()) == server.process.pid
        old = set(server.worker_pids())
        sockets = [BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url)) for _ in range(4)]
        subprocess.run(["bash", "-c", reload.replace(PID_FILE, str(pid_file))], check=True, timeout=30)
        for ws in sockets:
            ws.ws.settimeout(30)
            opcode, data = ws.ws.recv_data(control_frame=True)
            assert opcode == 8 and parse_close(data)[0] == 1001
        deadline = time.monotonic() + 30
        while (len(set(server.worker_pids())) != 2 or set(server.worker_pids()) & old) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(set(server.worker_pids())) == 2 and not set(server.worker_pids()) & old
        with BokehWS(f"{server.ws_url}/hello/ws", page_token(server.url)) as ws:
            assert ws.pull().msgtype == "PULL-DOC-REPLY"
        assert requests.get(server.url + "/readyz", timeout=TIMEOUT).status_code == 200
    finally:
        for ws in sockets:
            ws.close()
        server.stop()


def test_prometheus_scrape_config_as_written(tmp_path):
    job = yaml.safe_load(readme_block("yaml", "scrape_configs"))["scrape_configs"][0]
    token = "scrape-token-0123456789"
    credentials = tmp_path / "bokeh-flask.token"
    credentials.write_text(token + "\n")  # Prometheus strips the file's trailing whitespace
    auth = job["authorization"]
    assert set(auth) == {"credentials_file"}  # type Bearer, Prometheus' default
    server = launch("cli", apps=[HELLO], args=["--metrics", "--metrics-token", token], wait_path="/hello")
    try:
        url = server.url + job["metrics_path"]
        scraped = requests.get(url, headers={"Authorization": f"Bearer {credentials.read_text().strip()}"},
                               timeout=TIMEOUT)
        assert scraped.status_code == 200, scraped.text[:300]
        assert "bokeh_flask_sessions" in scraped.text
        refused = requests.get(url, timeout=TIMEOUT)
        assert refused.status_code == 401 and "bokeh_flask" not in refused.text
    finally:
        server.stop()
