"""Websockets over TLS (gunicorn ``--certfile``): TLS sockets cannot ``sendmsg``, so the
server writes a message's chunks one by one there; frames must arrive the same."""
from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import requests

from tests.support import servers
from tests.support.wire import BokehWS, decode_ndarray, map_entries, model_by_name, model_changed, model_changes

pytestmark = [pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

_TOKEN_RE = re.compile(r'\\?"token\\?"\s*:\s*\\?"([A-Za-z0-9_\-.]+)\\?"')
NO_VERIFY = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}


@pytest.fixture(scope="module")
def tls_server() -> Iterator[str]:
    """gunicorn with a self-signed certificate; yields its https:// URL."""
    folder = Path(tempfile.mkdtemp(prefix="bokeh-flask-tls-"))
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    port = servers.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    env.update(PYTHONUNBUFFERED="1", BOKEH_DEFAULT_SERVER_PORT=str(port),
               BOKEH_APPS=os.pathsep.join(str(servers.APPS / a) for a in ("hello.py", "ws_bigdata_app.py")))
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [str(servers.BIN / "gunicorn"), "-c", str(servers.ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}",
         "--certfile", str(cert), "--keyfile", str(key), "wsgi:app"],
        cwd=servers.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"https://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert process.poll() is None, (folder / "server.log").read_text()
            try:
                requests.get(url + "/", timeout=2, verify=False)
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)


def _connect(url: str, app: str) -> BokehWS:
    page = requests.get(f"{url}/{app}/", timeout=10, verify=False)
    token = _TOKEN_RE.search(page.text).group(1)
    return BokehWS(f"{url.replace('https', 'wss')}/{app}/ws", token, sslopt=NO_VERIFY)


def test_big_pull_over_tls(tls_server):
    with _connect(tls_server, "ws_bigdata_app") as ws:
        reply = ws.pull()
        column = map_entries(model_by_name(reply.content["doc"], "big")["attributes"]["data"])["x"]
        assert np.array_equal(decode_ndarray(column, reply.buffers), np.arange(1e6))
        ws.barrier()


def test_patch_round_trip_over_tls(tls_server):
    with _connect(tls_server, "hello") as ws:
        doc = ws.pull().content["doc"]
        ti, div = model_by_name(doc, "ti")["id"], model_by_name(doc, "status")["id"]
        reply, before = ws.request("PATCH-DOC", {"events": [model_changed(ti, "value", "tls")]})
        assert reply.msgtype == "OK"
        assert [e["new"] for e in model_changes(before, "text", div)] == ["got tls"]
