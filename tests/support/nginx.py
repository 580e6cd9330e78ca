"""Debian's nginx in front of real bokeh-flask servers, for the scale-out tests.

The site configuration is ``examples/deploy/nginx.conf``, the one README's Deployment
section shows (or ``nginx-affinity.conf``, the recipe that keeps a browser on one host),
used as it is except for its ``listen`` port and its upstream ``server``
lines, so the documented config and the tested one cannot drift apart. It is wrapped in a
main config that keeps everything in a temporary folder (``daemon off``, pid, logs, temp
paths) on a free loopback port: the system nginx, its config and port 80 are never touched.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support.servers import IN_CI, ROOT, Server, free_port, spawn

NGINX = "/usr/sbin/nginx"
SITE_CONFIG = ROOT / "examples" / "deploy" / "nginx.conf"
#: The recipe that keeps each browser on one host (consistent hashing of a cookie).
AFFINITY_CONFIG = ROOT / "examples" / "deploy" / "nginx-affinity.conf"

_UPSTREAM_RE = re.compile(r"^upstream bokeh_flask \{\n(?P<body>.*?)^\}", re.M | re.S)
_SERVER_LINE_RE = re.compile(r"^(\s*)server \S+;\n", re.M)
_LISTEN_RE = re.compile(r"^(\s*)listen 80;$", re.M)

#: nginx's own temp folders (the Debian build puts them in /var/lib/nginx).
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def require_nginx() -> None:
    """Skip without nginx locally; under ``CI=true`` a missing nginx is a failure."""
    if not Path(NGINX).exists():
        if IN_CI:
            pytest.fail(f"{NGINX} is missing; CI must install Debian's nginx (make nginx)")
        pytest.skip(f"{NGINX} is not installed (make nginx)")


def site_config(upstreams: list[str], listen: str, path: Path = SITE_CONFIG) -> str:
    """A shipped site config (examples/deploy/nginx.conf unless ``path``) with its upstream
    servers and listen address replaced."""
    text = path.read_text()
    block = _UPSTREAM_RE.search(text)
    assert block, f"no 'upstream bokeh_flask {{ ... }}' block in {path}"
    body = block.group("body")
    indent = _SERVER_LINE_RE.search(body)
    assert indent, f"no upstream server lines in {path}"
    servers = "".join(f"{indent.group(1)}server {address};\n" for address in upstreams)
    body = _SERVER_LINE_RE.sub("", body)
    body = body + servers
    text = text[:block.start("body")] + body + text[block.end("body"):]
    text, count = _LISTEN_RE.subn(rf"\1listen {listen};", text)
    assert count == 1, f"expected one 'listen 80;' line in {path}, found {count}"
    return text


def main_config(folder: Path, site_path: Path) -> str:
    """A main nginx.conf that keeps every file nginx writes inside ``folder``."""
    temp = "\n".join(f"    {name}_temp_path {folder / name};" for name in _TEMP_PATHS)
    # as root nginx would switch its worker to 'nobody', which cannot enter pytest's tmp dirs
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"daemon off;\n{user}worker_processes 1;\n"
        f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} info;\n"
        "events {\n    worker_connections 1024;\n}\n"
        "http {\n"
        f"    access_log {folder / 'access.log'};\n{temp}\n"
        f"    include {site_path};\n"
        "}\n"
    )


def error_log(proxy: Server) -> str:
    """nginx's error log (``-e``), next to its output log in the proxy's folder."""
    path = proxy.log_path.parent / "error.log"
    return path.read_text(errors="replace") if path.exists() else ""


def start_nginx(upstreams: list[str], folder: Path, timeout: float = 30.0, site: Path = SITE_CONFIG) -> Server:
    """Run nginx in the foreground with the shipped ``site`` config in front of
    ``upstreams`` and wait until it answers; ``stop()`` is a fast shutdown (SIGTERM): open
    websockets are cut, not waited for."""
    require_nginx()
    port = free_port()
    site_path = folder / "bokeh-flask.conf"
    site_path.write_text(site_config(upstreams, f"127.0.0.1:{port}", site))
    conf = folder / "nginx.conf"
    conf.write_text(main_config(folder, site_path))
    command = [NGINX, "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")]
    return spawn("nginx", command, port, dict(os.environ), ready=lambda status: status < 500,
                 timeout=timeout, cwd=folder, log_path=folder / "nginx.out")
