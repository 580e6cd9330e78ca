"""A local-only ``--dev`` (issue 21, item 8).

``--dev`` shows an app that fails to load as a page with its file, line, message and
traceback, whose text can hold secrets (a database URL). Now ``--dev`` listens on 127.0.0.1
unless ``--address`` says otherwise, and says so when it starts; the page's details go only
to clients on this machine (with ``--use-xheaders``, the proxied client's address decides).
Others get 500 and "the app failed to load; see the server's terminal".

A client on another machine is stood for by ``X-Forwarded-For`` behind ``--use-xheaders``;
that ``--dev`` alone cannot be reached from other machines is read from the kernel's table
of listening sockets (``/proc/net/tcp``, ``tcp6``), without sending anything off loopback.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.support.bokeh_version import embed_path
from tests.support.servers import BIN, Server, free_port, launch, spawn

GOOD = "from bokeh.io import curdoc\nfrom bokeh.models import Div\ncurdoc().add_root(Div(text='fine'))\n"
SECRET = "postgres://scott:tiger-0123@db.internal/prod"
BROKEN = f"from bokeh.io import curdoc\nDATABASE = {SECRET!r}\nraise RuntimeError('cannot connect to ' + DATABASE)\n"
FAR_CLIENT = "203.0.113.9"


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


def serve_dev(tmp_path: Path, *args: str) -> Server:
    """``bokeh-flask serve app.py --port N --dev ARGS`` as a user types it (no --address
    unless ARGS has one), answering on 127.0.0.1."""
    app = tmp_path / "devapp.py"
    app.write_text(GOOD)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    command = [str(BIN / "bokeh-flask"), "serve", str(app), "--port", str(port), "--dev", *args]
    return spawn("cli-dev", command, port, {**env, "PYTHONUNBUFFERED": "1"},
                 ready=lambda status: status == 200, ready_path="/devapp", cwd=tmp_path)


def test_dev_without_address_listens_on_loopback_only(tmp_path):
    server = serve_dev(tmp_path)
    try:
        assert listening_addresses(server.port) == {"127.0.0.1"}
        server.wait_for_log(f"Bokeh app running at: http://127.0.0.1:{server.port}/devapp")
        server.wait_for_log(f"--dev: listening on 127.0.0.1 port {server.port} (this machine only; "
                            "--address to serve others)")
    finally:
        server.stop()


def test_dev_with_an_address_listens_there_and_says_so(tmp_path):
    server = serve_dev(tmp_path, "--address", "0.0.0.0")
    try:
        assert listening_addresses(server.port) == {"0.0.0.0"}
        server.wait_for_log(f"--dev: listening on 0.0.0.0 port {server.port} (error pages show "
                            "tracebacks to clients on this machine only)")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def broken_dev_server(tmp_path_factory):
    """``--dev --use-xheaders`` with an app whose save broke it, raising with a secret in its text."""
    tmp_path = tmp_path_factory.mktemp("dev")
    app = tmp_path / "devapp.py"
    app.write_text(GOOD)
    server = launch("cli", apps=[app], args=["--dev", "--use-xheaders"], wait_path="/devapp", cwd=tmp_path)
    try:
        app.write_text(BROKEN)
        stamp = time.time() + 1
        os.utime(app, (stamp, stamp))
        deadline = time.monotonic() + 30
        while requests.get(server.url + "/devapp", timeout=10).status_code == 200:
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def get(server, path: str, client: str | None) -> requests.Response:
    headers = {"X-Forwarded-For": client} if client else {}
    return requests.get(server.url + path, headers=headers, timeout=10)


@pytest.mark.parametrize("client", [None, "127.0.0.1", "127.8.9.10", "::1"])
def test_a_client_on_this_machine_gets_the_traceback(broken_dev_server, client):
    page = get(broken_dev_server, "/devapp", client)
    assert page.status_code == 500
    assert 'id="traceback"' in page.text and "Traceback" in page.text
    assert "RuntimeError: cannot connect to " + SECRET in page.text
    script = get(broken_dev_server, embed_path("/devapp"), client)
    assert script.status_code == 500 and SECRET in script.text


@pytest.mark.parametrize("client", [FAR_CLIENT, "192.0.2.7", "2001:db8::1", "::ffff:198.51.100.1", "not-an-ip"])
def test_a_client_elsewhere_gets_no_traceback_and_no_exception_text(broken_dev_server, client):
    page = get(broken_dev_server, "/devapp", client)
    assert page.status_code == 500
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "The app failed to load" in page.text and "server's terminal" in page.text
    for leak in (SECRET, "tiger", "Traceback", "RuntimeError", "devapp.py", 'id="traceback"'):
        assert leak not in page.text, leak
    assert "/_dev/boot" in page.text  # it still reloads itself after the next save
    script = get(broken_dev_server, embed_path("/devapp"), client)
    assert script.status_code == 500
    assert script.text == "500: the app failed to load; see the server's terminal\n"
