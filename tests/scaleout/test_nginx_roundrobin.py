"""Two bokeh-flask servers behind nginx in plain round robin, no sticky sessions.

nginx runs the README's config (``examples/deploy/nginx.conf``, see :mod:`tests.support.nginx`)
with one worker, so requests alternate between the two gunicorn servers. A page and its
websocket therefore often land on different servers: the session must then be rebuilt from
the token alone, be the document the page shows, and answer changes both ways. The
``scaleout_pid`` app reports which process rendered the page and which one serves the
session, so the tests also prove that both servers served pages and websockets and that
both cases (same server, other server) occurred: a balancer that sends everything to one
backend fails them. Each server runs two workers, and a session whose websocket comes back
to its page's server must be served by the worker that rendered the page (handed over, not
built again).
"""
from __future__ import annotations

import re
from itertools import cycle
from pathlib import Path

import pytest
import requests

from tests.support.browser import assert_no_console_errors, wait_for_model
from tests.support.nginx import SITE_CONFIG, error_log, require_nginx, start_nginx
from tests.support.servers import ROOT, launch
from tests.support.wire import BokehWS, model_by_name, model_changed

APP = Path(__file__).resolve().parent.parent / "apps" / "scaleout_pid"
SECRET = "n" * 44
SESSIONS = 60
#: gunicorn workers per server: a session must not be built twice within a host.
WORKERS = 2
#: Pages fetched before their websockets open. With strict alternation an odd batch puts
#: each websocket on the other server and an even batch on the page's own server.
BATCHES = (1, 2, 3)
BROWSER_PAGES = 6


@pytest.fixture(scope="module", params=["unsigned", "signed"])
def cluster(request, tmp_path_factory):
    """Two gunicorn servers sharing BOKEH_SECRET_KEY, and nginx in front of them.

    The servers keep their default websocket allowlist (``localhost:<own port>``): the
    websocket's Origin is allowed because nginx passes the browser's Host through.
    """
    require_nginx()
    env = {"BOKEH_SECRET_KEY": SECRET, "BOKEH_SIGN_SESSIONS": "yes" if request.param == "signed" else "no",
           "BOKEH_FLASK_WORKERS": str(WORKERS)}
    servers, proxy = [], None
    try:
        # one after the other: a started server holds its port, so the next free port differs
        servers.append(launch("gunicorn", apps=[APP], env=env))
        servers.append(launch("gunicorn", apps=[APP], env=env))
        proxy = start_nginx([f"127.0.0.1:{s.port}" for s in servers], tmp_path_factory.mktemp("nginx"))
        yield proxy, servers
    finally:
        if proxy:
            proxy.stop()
        for server in servers:
            server.stop()


def _page(proxy, cookies: dict | None = None, **params) -> tuple[str, list[str]]:
    response = requests.get(f"{proxy.url}/scaleout_pid", params=params, cookies=cookies, timeout=10)
    assert response.status_code == 200, response.text[:500]
    html = response.text.replace('\\"', '"')
    token = re.search(r'"token":\s*"([^"]+)"', html).group(1)
    return token, re.findall(r'data-root-id="([^"]+)"', html)


def _parent_pid(pid: int) -> int:
    """The gunicorn master of a worker process (field 4 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def _text(doc: dict, name: str) -> str:
    return model_by_name(doc, name)["attributes"]["text"]


def _check_session(ws: BokehWS, root_ids: list[str], n: int) -> tuple[int, int]:
    """The pulled document is the page's, and a change round-trips; (page pid, session pid)."""
    doc = ws.pull().content["doc"]
    assert [root["id"] for root in doc["roots"]] == root_ids
    assert f"user=u{n}" in _text(doc, "args")
    page_pid, session_pid = re.fullmatch(r"page_pid=(\d+) session_pid=(\d+)", _text(doc, "where")).groups()
    box, echo = model_by_name(doc, "box")["id"], model_by_name(doc, "echo")["id"]
    ws.patch(model_changed(box, "value", f"v{n}"))
    replies = ws.recv_until(lambda m: m.msgtype == "OK")
    changes = [e for m in replies if m.msgtype == "PATCH-DOC" for e in m.events]
    assert {"kind": "ModelChanged", "model": {"id": echo}, "attr": "text", "new": f"echo v{n}"} in changes
    return int(page_pid), int(session_pid)


def test_many_sessions_round_robin_through_nginx(cluster):
    proxy, servers = cluster
    open_sockets: list[BokehWS] = []
    served: list[tuple[int, int]] = []
    try:
        n = 0
        for size in cycle(BATCHES):
            if n >= SESSIONS:
                break
            pages = [(n + i, *_page(proxy, user=f"u{n + i}")) for i in range(min(size, SESSIONS - n))]
            for k, token, root_ids in pages:
                ws = BokehWS(f"{proxy.ws_url}/scaleout_pid/ws", token)
                open_sockets.append(ws)  # all stay open until the end: 60 live sessions
                served.append(_check_session(ws, root_ids, k))
            n += len(pages)
    finally:
        for ws in open_sockets:
            ws.close()

    masters = {s.process.pid for s in servers}
    assert len(served) == SESSIONS
    assert {_parent_pid(page) for page, _ in served} == masters, "both servers must render pages"
    assert {_parent_pid(session) for _, session in served} == masters, "both servers must hold sessions"
    rebuilt = sum(_parent_pid(page) != _parent_pid(session) for page, session in served)
    assert 0 < rebuilt < SESSIONS, f"{rebuilt} of {SESSIONS} sessions were rebuilt on the other server"
    # within a host the websocket reaches the worker that rendered the page: built once
    twice = [(page, session) for page, session in served if _parent_pid(page) == _parent_pid(session)
             and page != session]
    assert not twice, f"sessions built a second time in another worker of their page's host: {twice}"
    assert len({session for _, session in served}) > len(servers), "every server should use both its workers"
    assert "[error]" not in error_log(proxy), error_log(proxy)[-3000:]


@pytest.mark.browser
@pytest.mark.parametrize("cluster", ["unsigned"], indirect=True)
def test_browser_pages_through_nginx(cluster, page):
    proxy, _ = cluster
    tabs = [page] + [page.context.new_page() for _ in range(BROWSER_PAGES - 1)]
    for tab in tabs[1:]:  # record console errors as the page fixture does for the first one
        tab.console_messages = []
        tab.on("console", lambda m, tab=tab: tab.console_messages.append(f"{m.type}: {m.text}"))
        tab.on("pageerror", lambda exc, tab=tab: tab.console_messages.append(f"error: uncaught {exc}"))
        tab.set_default_timeout(15_000)
    for tab in tabs:
        tab.goto(f"{proxy.url}/scaleout_pid?user=tab")
    for i, tab in enumerate(tabs):
        wait_for_model(tab, "where", "v.startsWith('page_pid=')")
        box = tab.locator("input.bk-input")
        box.fill(f"tab {i}")
        box.press("Enter")
        # the echo Div is written only by the Python callback on the session's server
        tab.get_by_text(f"echo tab {i}", exact=True).wait_for()
    for tab in tabs:
        assert_no_console_errors(tab)


def test_readme_shows_the_tested_nginx_config():
    readme = (ROOT / "README.md").read_text()
    assert SITE_CONFIG.read_text() in readme, \
        "README's Deployment section must show examples/deploy/nginx.conf as it is"
