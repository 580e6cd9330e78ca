"""Several bokeh-flask "hosts" on loopback behind a load balancer, and raw browsers.

``Hosts`` runs each host as ``bokeh-flask serve`` with gunicorn workers of its own, a
private directory of its own (so no host reads another's files, as on separate machines)
and one shared Redis; a host a test stopped starts again on its port (the balancers'
configs name it) when the next test needs it. ``RawBrowser`` is what a browser does
through the balancer, with a cookie jar of its own (its login and the balancer's affinity
cookie): it loads a page and opens that page's websocket with its cookies, and reconnects
a dropped tab on BokehJS's schedule.
"""
from __future__ import annotations

import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests
import websocket
from bokeh.util.token import get_session_id

from tests.support.auth import COOKIE_SECRET, SIGNED_AUTH, TIMEOUT
from tests.support.servers import Server, launch
from tests.support.wire import BokehWS, model_by_name

#: BokehJS (>= 3.8) reconnects a dropped websocket at once, then after each failed attempt
#: waits this many seconds more (``_reconnect_delay``: 2 s * 2 ** attempts), five attempts in all.
BOKEHJS_RECONNECT_DELAYS = (0, 2, 4, 8, 16)

_NONCE_RE = re.compile(r"<title>nonce ([0-9a-f]+)</title>")
_TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')
_WHERE_RE = re.compile(r"nonce=([0-9a-f]+) pid=(\d+)")


class Hosts:
    """``count`` servers of ``app`` with ``workers`` workers each, sharing ``redis_url``."""

    def __init__(self, app: Path, redis_url: str, count: int = 2, workers: int = 2) -> None:
        self.app, self.redis_url, self.workers = app, redis_url, workers
        self.state_dirs = [tempfile.mkdtemp(prefix="bokeh-flask-host-") for _ in range(count)]
        with ThreadPoolExecutor(count) as pool:  # each boot takes seconds: side by side
            self.servers: list[Server] = list(pool.map(self._start, range(count)))

    def _start(self, index: int, port: int | None = None) -> Server:
        return launch("cli", apps=[self.app], wait_path="/readyz", port=port, args=[
            "--num-procs", str(self.workers), "--redis-url", self.redis_url,
            "--auth-module", str(SIGNED_AUTH), "--cookie-secret", COOKIE_SECRET,
            "--state-dir", self.state_dirs[index], "--log-level", "debug"])

    @property
    def upstreams(self) -> list[str]:
        return [f"127.0.0.1:{server.port}" for server in self.servers]

    def of_pid(self, pid: int) -> int:
        """The index of the host whose worker ``pid`` is."""
        for index, server in enumerate(self.servers):
            if server.process.poll() is None and pid in server.worker_pids():
                return index
        raise AssertionError(f"pid {pid} is no worker of a live host")

    def ensure_running(self) -> None:
        """Start each host a test stopped or killed again, on its port (the balancers'
        configs name it)."""
        for index, old in enumerate(self.servers):
            if old.process.poll() is not None:
                old.stop()
                self.servers[index] = self._start(index, port=old.port)

    def created_count(self, session_id: str) -> int:
        """How often the app's code ran for this session, on every host (debug log lines)."""
        line = f"session {session_id.split('.', 1)[0][:8]}… created for app /{self.app.stem}"
        return sum(server.log_text().count(line) for server in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@dataclass
class Tab:
    """A page and its websocket: the page's nonce, the host that holds its session."""

    browser: RawBrowser
    number: int
    nonce: str
    token: str
    ws: BokehWS
    pid: int

    @property
    def session_id(self) -> str:
        return get_session_id(self.token)


class RawBrowser:
    """A browser's cookie jar and what it sends through the balancer at ``base``."""

    def __init__(self, base: str, ws_base: str, app: str) -> None:
        self.base, self.ws_base, self.app = base, ws_base, app
        self.http = requests.Session()

    def login(self, user: str) -> None:
        answer = self.http.post(self.base + "/signin", data={"name": user}, allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 302, answer.text[:300]

    def logout(self) -> None:
        assert self.http.get(self.base + "/signout", timeout=TIMEOUT).status_code == 200

    @property
    def cookie_header(self) -> str:
        return "Cookie: " + "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def open_tab(self, number: int) -> Tab:
        """Load the page, open its websocket with this browser's cookies and pull its document."""
        page = self.http.get(f"{self.base}/{self.app}", params={"tab": number}, timeout=TIMEOUT)
        assert page.status_code == 200, page.text[:300]
        nonce = _NONCE_RE.search(page.text).group(1)
        token = _TOKEN_RE.search(page.text.replace('\\"', '"')).group(1)
        ws = self.connect(token)
        tab = Tab(self, number, nonce, token, ws, 0)
        tab.pid = self.document(tab)[1]
        return tab

    def connect(self, token: str) -> BokehWS:
        return BokehWS(f"{self.ws_base}/{self.app}/ws", token, header=[self.cookie_header])

    @staticmethod
    def document(tab: Tab) -> tuple[str, int, str]:
        """(nonce, pid, who) of the document the tab's websocket meets now."""
        doc = tab.ws.pull().content["doc"]
        nonce, pid = _WHERE_RE.fullmatch(model_by_name(doc, "where")["attributes"]["text"]).groups()
        return nonce, int(pid), model_by_name(doc, "who")["attributes"]["text"]

    def reconnect(self, tab: Tab) -> tuple[float, list[str]]:
        """Reconnect as BokehJS does, with the tab's token and this browser's cookies, on
        its schedule; (the time the new websocket opened, the attempts that failed before)."""
        failures: list[str] = []
        for delay in BOKEHJS_RECONNECT_DELAYS:
            time.sleep(delay)
            try:
                tab.ws = self.connect(tab.token)
                return time.monotonic(), failures
            except (OSError, websocket.WebSocketException) as exc:
                failures.append(f"after {delay} s more: {exc!r}"[:300])
        raise AssertionError("the tab did not come back:\n" + "\n".join(failures))
