"""``--metrics-token-file`` (issue 21, item 7): the metrics token from a file, as
``--cookie-secret-file`` does for the cookie secret, so it shows in no command line.

``--metrics-token`` shows in ``ps`` to every local user. With the file, neither the master's
nor a worker's command line holds the token (settings reach the workers as the file's path
in ``BOKEH_FLASK_SETTINGS``), the log does not either, and ``/metrics`` answers 401 without
``Authorization: Bearer <token>`` and 200 with it. Bad files stop the start with one line
and exit 2.
"""
from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.cli import HELLO, assert_one_line_error, clean_env, run_cli
from tests.support.servers import launch


def token_file(tmp_path: Path, content: bytes | str) -> Path:
    path = tmp_path / "metrics.token"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def command_lines() -> str:
    """Every process's full command line, as any local user sees it (-ww: not cut at 80 columns)."""
    return subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, timeout=30, check=True).stdout


def assert_token_guards_metrics(server, token: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        response = requests.get(server.url + "/metrics", headers=headers, timeout=30)
        assert response.status_code == 401, headers
    response = requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert "bokeh_flask_sessions_created_total" in response.text


def test_serve_with_a_token_file_keeps_the_token_out_of_ps_and_the_log(tmp_path):
    token = secrets.token_urlsafe(24)
    path = token_file(tmp_path, token + "\n")
    server = launch("cli", apps=[HELLO], args=["--metrics", "--metrics-token-file", str(path)], wait_path="/hello")
    try:
        assert_token_guards_metrics(server, token)
        (worker,) = server.worker_pids()
        lines = command_lines()
        assert f"--metrics-token-file {path}" in lines  # the master is listed
        assert token not in lines
        for pid in (server.process.pid, worker):
            assert token.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
            assert token.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        assert token not in server.log_text()
    finally:
        server.stop()


def test_gunicorn_reads_the_token_file_from_the_environment(tmp_path):
    token = secrets.token_urlsafe(24)
    path = token_file(tmp_path, token)
    server = launch("gunicorn", apps=[HELLO], env={"BOKEH_FLASK_METRICS": "1",
                                                   "BOKEH_FLASK_METRICS_TOKEN_FILE": str(path)})
    try:
        assert_token_guards_metrics(server, token)
        assert token not in command_lines()
    finally:
        server.stop()


@pytest.mark.parametrize("content, needle", [
    (None, "cannot read"), (b"", "is empty"), (b"\xff\xfe\n", "is not UTF-8 text"),
    (b"two words\n", "printable ASCII"), ("tökén".encode(), "printable ASCII"),
], ids=["missing", "empty", "binary", "space", "non-ascii"])
def test_bad_token_files_stop_the_start_in_one_line(tmp_path, content, needle):
    path = tmp_path / "metrics.token" if content is None else token_file(tmp_path, content)
    result = run_cli("serve", str(HELLO), "--metrics", "--metrics-token-file", str(path), timeout=30)
    assert_one_line_error(result, "--metrics-token-file")
    assert needle in result.stderr
    if content:
        assert content.strip().decode(errors="replace") not in result.stderr  # never echoed


def test_bad_token_file_from_the_environment_is_one_line(tmp_path):
    env = clean_env(BOKEH_FLASK_METRICS="1", BOKEH_FLASK_METRICS_TOKEN_FILE=str(tmp_path / "nope"))
    assert_one_line_error(run_cli("serve", str(HELLO), env=env, timeout=30), "--metrics-token-file: cannot read")


def test_token_file_without_metrics_is_refused(tmp_path):
    path = token_file(tmp_path, "scrape-0123456789")
    assert_one_line_error(run_cli("serve", str(HELLO), "--metrics-token-file", str(path), timeout=30),
                           "--metrics-token-file needs --metrics")
