"""``bokeh-flask`` as a user runs it: ``secret``, start-up validation, and a real ``serve``."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
import requests
import websocket  # websocket-client
from bokeh.util.token import generate_jwt_token, generate_session_id

from tests.support.bokeh_version import BOKEH4
from tests.support.cli import HELLO, assert_one_line_error, clean_env, run_cli
from tests.support.servers import ROOT, launch


def ws_url(server, path: str) -> str:
    return f"{server.ws_url}{path}"


def unsigned_token() -> str:
    sid = generate_session_id(secret_key=None, signed=False)
    return generate_jwt_token(sid, secret_key=None, signed=False)


# -- secret ---------------------------------------------------------------------------------

def test_secret_prints_a_new_44_char_key():
    keys = set()
    for _ in range(2):
        result = run_cli("secret")
        assert result.returncode == 0, result.stderr
        key = result.stdout.strip()
        assert len(key) == 44 and key.isalnum(), key
        assert "Traceback" not in result.stderr
        keys.add(key)
    assert len(keys) == 2


# -- start-up validation ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def junk_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "notes.txt").write_text("not an app\n")
    # invalid per Bokeh's rules: a user function needs a login_url or get_login_url
    (d / "auth.py").write_text("def get_user(handler):\n    return 'u'\n")
    (d / "bad_port.yaml").write_text("default_server_port: abc\n")
    return d


BAD = {
    "port-negative": (["--port", "-1"], "--port"),
    "keep-alive-negative": (["--keep-alive", "-5"], "--keep-alive"),
    "unused-lifetime-zero": (["--unused-session-lifetime", "0"], "--unused-session-lifetime"),
    "check-unused-zero": (["--check-unused-sessions", "0"], "--check-unused-sessions"),
    "token-expiration-zero": (["--session-token-expiration", "0"], "--session-token-expiration"),
    "max-message-size-zero": (["--websocket-max-message-size", "0"], "--websocket-max-message-size"),
    "compression-level-12": (["--websocket-compression-level", "12"], "--websocket-compression-level"),
    "compression-level-negative": (["--websocket-compression-level", "-1"], "--websocket-compression-level"),
    "compression-mem-level-0": (["--websocket-compression-mem-level", "0"], "--websocket-compression-mem-level"),
    "compression-mem-level-10": (["--websocket-compression-mem-level", "10"], "--websocket-compression-mem-level"),
    "signed-without-secret": (["--session-ids", "signed"], "BOKEH_SECRET_KEY"),
    "external-signed-without-secret": (["--session-ids", "external-signed"], "BOKEH_SECRET_KEY"),
    "include-and-exclude-headers": (["--include-headers", "a", "--exclude-headers", "b"], "--include-headers"),
    "include-and-exclude-cookies": (["--include-cookies", "a", "--exclude-cookies", "b"], "--include-cookies"),
    "auth-module-invalid": (["--auth-module", "{junk}/auth.py"], "auth"),
    "auth-module-missing": (["--auth-module", "{junk}/nope.py"], "--auth-module"),
    "bad-origin": (["--allow-websocket-origin", "a:b:c"], "--allow-websocket-origin"),
    "missing-index": (["--index", "{junk}/nope.html"], "--index"),
    "missing-config": (["--use-config", "{junk}/nope.yaml"], "--use-config"),
    "config-not-a-mapping": (["--use-config", "{junk}/notes.txt"], "--use-config"),
    "config-bad-value": (["--use-config", "{junk}/bad_port.yaml"], "default_server_port in --use-config"),
    "bad-log-format": (["--log-format", "%(nope)s"], "--log-format"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_settings_exit_2_with_one_clear_line(case, junk_files):
    args, needle = BAD[case]
    args = [a.replace("{junk}", str(junk_files)) for a in args]
    assert_one_line_error(run_cli("serve", str(HELLO), *args, timeout=30), needle)


def test_nonexistent_app_path(junk_files):
    missing = junk_files / "nope" / "app.py"
    assert_one_line_error(run_cli("serve", str(missing), timeout=30), str(missing))


def test_txt_app_path(junk_files):
    assert_one_line_error(run_cli("serve", str(junk_files / "notes.txt"), timeout=30), "notes.txt")


def test_signing_with_secret_in_environment_validates():
    # the same flag passes validation once BOKEH_SECRET_KEY is set; check with a bad port so
    # that it exits instead of serving
    result = run_cli("serve", str(HELLO), "--session-ids", "signed", "--port", "-1",
                     env=clean_env(BOKEH_SECRET_KEY="k" * 44), timeout=30)
    assert_one_line_error(result, "--port")


def test_bad_boolean_environment_is_one_line():
    result = run_cli("serve", str(HELLO), env=clean_env(BOKEH_SIGN_SESSIONS="maybe"), timeout=30)
    assert_one_line_error(result, "BOKEH_SIGN_SESSIONS")


def test_argparse_errors_exit_2_without_traceback():
    result = run_cli("serve", "--port", "abc", timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--port" in result.stderr


# -- serving ----------------------------------------------------------------------------------

def _stop_and_check(server):
    pid = server.process.pid
    os.killpg(pid, signal.SIGTERM)
    try:
        code = server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(pid, signal.SIGKILL)
        pytest.fail("bokeh-flask did not stop within 20 s of SIGTERM")
    # every process of the group (gunicorn master and workers) is gone
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
        pytest.fail("worker processes survived SIGTERM")
    log = server.log_text()
    assert code == 0, (code, log[-3000:])
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture
def served():
    started = []

    def start(**kwargs):
        s = launch("cli", apps=[HELLO], **kwargs)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_serve_hello_page_and_python_client(served):
    server = served()
    log = server.log_text()
    stamp = r"^\d\d\d\d-\d\d-\d\d [\d:,]+ "  # bokeh serve's default: every line timestamped
    assert re.search(stamp + rf"Bokeh app running at: http://127.0.0.1:{server.port}/hello$", log, re.M), log
    assert re.search(stamp + r"Starting bokeh-flask \S+ \(Bokeh \S+, gunicorn \S+, Python \S+\)$", log, re.M)
    page = requests.get(server.url + "/hello", timeout=10)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert "<title>Hello</title>" in page.text
    root = requests.get(server.url + "/", timeout=10, allow_redirects=False)
    assert root.status_code == 302 and root.headers["Location"].endswith("/hello")

    from bokeh.client import pull_session

    with pull_session(url=server.url + "/hello") as session:
        names = {m.name for m in session.document.roots[0].references() if m.name}
        assert {"status", "ti", "btn"} <= names
        assert session.document.title == "Hello"
        session.force_roundtrip()  # answered: SERVER-INFO-REPLY (Bokeh 4: OK to SYNC)
    _stop_and_check(server)


def _ws_open(server, path: str, origin: str | None) -> websocket.WebSocket:
    kwargs = {"subprotocols": ["bokeh", unsigned_token()], "timeout": 10}
    if origin is not None:
        kwargs["origin"] = origin
    else:
        kwargs["suppress_origin"] = True
    return websocket.create_connection(ws_url(server, path), **kwargs)


def _first_message_type(ws) -> str:
    """Read one whole Bokeh message (ACK has no buffers): Bokeh 3's header, metadata and
    content frames, or Bokeh 4's one envelope."""
    first = json.loads(ws.recv())
    if BOKEH4:
        return first["header"]["msgtype"]
    ws.recv()
    ws.recv()
    return first["msgtype"]


def test_serve_prefix_origin_and_keep_alive_flags(served):
    server = served(args=["--prefix", "/pre", "--allow-websocket-origin", "example.com:80",
                          "--keep-alive", "0"], wait_path="/pre/hello")
    assert requests.get(server.url + "/pre/hello", timeout=10).status_code == 200
    assert requests.get(server.url + "/pre/hello/", timeout=10).status_code == 200
    assert requests.get(server.url + "/hello", timeout=10).status_code == 404
    assert requests.get(server.url + "/pre/hello/metadata", timeout=10).json()["url"] == "/hello"

    # allowed origin
    ws = _ws_open(server, "/pre/hello/ws", "http://example.com")
    try:
        assert ws.subprotocol == "bokeh"
        assert _first_message_type(ws) == "ACK"
        # --keep-alive 0: no pings
        ws.settimeout(1.5)
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv_data_frame(control_frame=True)
    finally:
        ws.close()

    # foreign origin: refused before the upgrade
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _ws_open(server, "/pre/hello/ws", "http://other.com")
    assert refused.value.status_code == 403

    # the default localhost:<port> is replaced by the given origin
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _ws_open(server, "/pre/hello/ws", f"http://localhost:{server.port}")
    assert refused.value.status_code == 403

    # no Origin (non-browser clients) is allowed
    ws = _ws_open(server, "/pre/hello/ws", None)
    try:
        assert _first_message_type(ws) == "ACK"
    finally:
        ws.close()

    # a raw handshake with requests: same decision
    for origin, status in (("http://example.com", 101), ("http://other.com", 403)):
        r = requests.get(server.url + "/pre/hello/ws", timeout=10, stream=True, headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": origin,
            "Sec-WebSocket-Protocol": f"bokeh, {unsigned_token()}",
        })
        assert r.status_code == status, (origin, r.status_code, r.text[:200])
        r.close()
    _stop_and_check(server)


def test_serve_keep_alive_sends_pings(served):
    server = served(args=["--keep-alive", "200"])
    ws = _ws_open(server, "/hello/ws", None)
    try:
        assert _first_message_type(ws) == "ACK"
        ws.settimeout(5)
        frame = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            opcode, frame = ws.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_PING:
                break
        assert frame is not None and frame.opcode == websocket.ABNF.OPCODE_PING
        assert frame.data.isdigit()
    finally:
        ws.close()
    _stop_and_check(server)


def test_flask_run_from_a_checkout_whose_folder_name_has_dots(tmp_path):
    """``flask --app wsgi run`` builds a module name from the folders around wsgi.py; the
    checkout's root is no package, so a folder like ``/tmp/tmp.Kt5Qa5`` still works."""
    import shutil

    checkout = tmp_path / "clone.with.dots"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".venv", ".venv-*", ".git", "bench", "tests", "__pycache__", "*.egg-info"))
    server = launch("flask", apps=[checkout / "examples" / "sliders.py"], cwd=checkout,
                    wait_path="/sliders")
    try:
        page = requests.get(server.url + "/sliders", timeout=10)
        assert page.status_code == 200 and "bokeh" in page.text.lower()
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()
