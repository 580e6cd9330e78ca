"""Two hosts behind real HAProxy and real nginx, each running its shipped affinity recipe.

Two ``bokeh-flask serve`` hosts (two workers and a private directory each, one shared
Redis) sit behind Debian's HAProxy with ``examples/deploy/haproxy.cfg`` (cookie insertion)
and behind Debian's nginx with ``examples/deploy/nginx-affinity.conf`` (consistent hashing
of a cookie nginx sets), each used as shipped but for its ports. Browsers are raw clients
with cookie jars of their own, and in each failover a chromium tab per balancer.

- Every tab's websocket meets its own page's document (a nonce in the title), and the app's
  code ran once for each session on all hosts together; the browsers spread over both
  hosts, and a logout reaches the user's tabs on both.
- A host stopped (SIGTERM to its master) or killed (SIGKILL to all its processes): each of
  its tabs reconnects on BokehJS's schedule and is back within 5 s of its drop on the
  other host, its session rebuilt once from the token with the page's request context
  (user, arguments); the other host's tabs stay as they were; the user's logout then
  reaches the moved tabs. The times are printed (``pytest -s``).

Runtime: 55-112 s on the shared 2-core machine at a load average of 13-23, most of it
host boots (two side by side at the start, one again between the two failovers; a boot
takes about 5 s on an idle machine, 18 s at load 20); each balancer starts afresh per test
(0.1 s).
"""
from __future__ import annotations

import os
import re
import signal
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.support.browser import model_value, wait_for_model
from tests.support.haproxy import require_haproxy, start_haproxy
from tests.support.hosts import Hosts, RawBrowser, Tab
from tests.support.nginx import AFFINITY_CONFIG, error_log, require_nginx, start_nginx
from tests.support.servers import APPS, ROOT, Server

APP = APPS / "lb_tab.py"
BALANCERS = ("haproxy", "nginx")
#: Browsers per user in the affinity test (a tab each): 20 sessions in all.
BROWSERS = 10
#: A tab of a stopped host is back on the other host within this many seconds of its drop.
FAILOVER_BOUND = 5.0
#: A logout closes the user's websockets within this (as tests/auth/test_logout_everywhere.py).
LOGOUT_BOUND = 2.0


@pytest.fixture(scope="module")
def hosts(redis_url):
    hosts = Hosts(APP, redis_url)
    yield hosts
    hosts.stop()


def _start_balancer(kind: str, hosts: Hosts, folder: Path) -> Server:
    folder.mkdir(exist_ok=True)
    if kind == "haproxy":
        require_haproxy()
        return start_haproxy(hosts.upstreams, folder)
    require_nginx()
    return start_nginx(hosts.upstreams, folder, site=AFFINITY_CONFIG)


@pytest.fixture(params=BALANCERS)
def balancer(request, hosts, tmp_path) -> Iterator[Server]:
    """A balancer of its own per test: nothing it learnt of a stopped host carries over."""
    hosts.ensure_running()
    proxy = _start_balancer(request.param, hosts, tmp_path)
    yield proxy
    proxy.stop()


@pytest.fixture
def balancers(hosts, tmp_path) -> Iterator[dict[str, Server]]:
    """Both balancers at once in front of the same hosts: one lost host tests both."""
    hosts.ensure_running()
    proxies: dict[str, Server] = {}
    try:
        for kind in BALANCERS:
            proxies[kind] = _start_balancer(kind, hosts, tmp_path / kind)
        yield proxies
    finally:
        for proxy in proxies.values():
            proxy.stop()


def _browser(proxy: Server, user: str) -> RawBrowser:
    browser = RawBrowser(proxy.url, proxy.ws_url, APP.stem)
    browser.login(user)
    return browser


def _tabs_on_every_host(proxy: Server, hosts: Hosts, user: str, at_least: int, limit: int = 24) -> list[Tab]:
    """Tabs of new browsers of ``user`` (one each) until there are ``at_least`` and every
    host holds one: a page and its websocket land on one host per browser, so new browsers
    are what spreads them."""
    tabs: list[Tab] = []
    for number in range(limit):
        tabs.append(_browser(proxy, user).open_tab(number))
        if len(tabs) >= at_least and {hosts.of_pid(t.pid) for t in tabs} == set(range(len(hosts.servers))):
            return tabs
    raise AssertionError(f"{limit} browsers reached only hosts {sorted({hosts.of_pid(t.pid) for t in tabs})}")


def _closed_by_logout(tabs: list[Tab], logout) -> list[float]:
    """Log out; the seconds from the logout request to each tab's close with 4000."""
    closes: dict[int, float] = {}

    def watch(index: int, tab: Tab) -> None:
        if tab.ws.wait_closed() == (4000, "the user logged out"):
            closes[index] = time.monotonic()

    threads = [threading.Thread(target=watch, args=(i, t), daemon=True) for i, t in enumerate(tabs)]
    for thread in threads:
        thread.start()
    start = time.monotonic()
    logout()
    for thread in threads:
        thread.join(timeout=max(0.1, start + LOGOUT_BOUND + 10 - time.monotonic()))
    assert len(closes) == len(tabs), f"{len(tabs) - len(closes)} of {len(tabs)} tabs stayed open after the logout"
    return sorted(t - start for t in closes.values())


def test_every_tab_meets_its_pages_document_built_once(balancer, hosts):
    alice = _tabs_on_every_host(balancer, hosts, "alice", BROWSERS)
    bob = [_browser(balancer, "bob").open_tab(n) for n in range(BROWSERS)]
    tabs = alice + bob
    try:
        for tab in tabs:
            nonce, pid, who = RawBrowser.document(tab)
            assert (nonce, pid) == (tab.nonce, tab.pid), f"tab {tab.number} met another document than its page's"
            assert who == f"user={'alice' if tab in alice else 'bob'} tab={tab.number}"
        built = {tab.session_id: hosts.created_count(tab.session_id) for tab in tabs}
        assert set(built.values()) == {1}, f"app code runs per session: {built}"
        spread = [sum(hosts.of_pid(tab.pid) == index for tab in tabs) for index in range(len(hosts.servers))]
        print(f"\n{len(tabs)} sessions through {balancer.kind}: {spread} per host, each built once")
        delays = _closed_by_logout(alice, alice[0].browser.logout)
        print(f"logout through {balancer.kind}: {len(delays)} tabs on both hosts closed after "
              f"{', '.join(f'{d * 1000:.0f}' for d in delays)} ms")
        assert delays[-1] < LOGOUT_BOUND
        for tab in bob:  # another user's tabs stay served
            assert RawBrowser.document(tab)[0] == tab.nonce
        # no request failed over: the health checks passed, nginx met no upstream error
        complaints = error_log(balancer) if balancer.kind == "nginx" else balancer.log_text()
        assert "[error]" not in complaints and " is DOWN" not in complaints, complaints[-3000:]
    finally:
        for tab in tabs:
            tab.ws.close()


class ChromiumTab:
    """A chromium tab of the browser whose cookies (login, affinity) ``like`` holds: it
    loads its page through ``proxy`` on the same host as that browser's tabs."""

    def __init__(self, page, proxy: Server, like: RawBrowser) -> None:
        self.page = page
        page.context.add_cookies([{"name": c.name, "value": c.value or "", "domain": "127.0.0.1", "path": "/"}
                                  for c in like.http.cookies])
        page.goto(f"{proxy.url}/{APP.stem}?tab=99")
        wait_for_model(page, "where", "v.startsWith('nonce=')")
        self.where = model_value(page, "where")

    @property
    def pid(self) -> int:
        return int(model_value(self.page, "where").rsplit("=", 1)[1])


class Failover:
    """The tabs of one balancer, and when each dropped and came back."""

    def __init__(self, proxy: Server, hosts: Hosts, victim: int) -> None:
        self.proxy = proxy
        self.tabs = _tabs_on_every_host(proxy, hosts, "alice", 4)
        self.moved = [tab for tab in self.tabs if hosts.of_pid(tab.pid) == victim]
        self.stayed = [tab for tab in self.tabs if tab not in self.moved]
        self.dropped: dict[int, float] = {}
        self.back: dict[int, float] = {}
        self.failed_attempts: list[str] = []
        self.chromium: ChromiumTab

    def open_chromium(self, page, hosts: Hosts, victim: int) -> None:
        self.chromium = ChromiumTab(page, self.proxy, self.moved[0].browser)
        assert hosts.of_pid(self.chromium.pid) == victim, "chromium's tab is not on its browser's host"

    def come_back(self, tab: Tab) -> None:
        tab.ws.wait_closed()
        self.dropped[tab.number] = time.monotonic()
        self.back[tab.number], failed = tab.browser.reconnect(tab)
        self.failed_attempts += failed

    def check(self, hosts: Hosts, survivor: int) -> None:
        for tab in self.moved:
            nonce, pid, who = RawBrowser.document(tab)
            assert hosts.of_pid(pid) == survivor and nonce != tab.nonce  # rebuilt there, not kept
            assert who == f"user=alice tab={tab.number}"  # with the page's request context
            assert hosts.created_count(tab.session_id) == 2  # the page's, and once on the survivor
        assert hosts.of_pid(self.chromium.pid) == survivor
        assert model_value(self.chromium.page, "who") == "user=alice tab=99"
        for tab in self.stayed:  # untouched: the same document, the same websocket
            assert RawBrowser.document(tab)[:2] == (tab.nonce, tab.pid)

    def report(self, how: signal.Signals, started: float, chromium_back: float) -> str:
        outage = [self.back[n] - self.dropped[n] for n in sorted(self.back)]
        assert max(outage) < FAILOVER_BOUND and chromium_back - started < FAILOVER_BOUND
        return (f"{self.proxy.kind}, host {how.name}: {len(outage)} raw tabs back "
                f"{', '.join(f'{s * 1000:.0f}' for s in outage)} ms after their drop (signal to drop "
                f"{', '.join(f'{(self.dropped[n] - started) * 1000:.0f}' for n in sorted(self.dropped))} ms); "
                f"chromium tab back {(chromium_back - started) * 1000:.0f} ms after the signal"
                + "".join(f"\n  failed attempt {failure}" for failure in self.failed_attempts))


@pytest.mark.browser
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_tabs_of_a_lost_host_come_back_on_the_other(balancers, hosts, page, how):
    victim, survivor = 0, 1
    runs = [Failover(proxy, hosts, victim) for proxy in balancers.values()]
    for run, tab in zip(runs, (page, page.context.new_page())):  # cookies name no port: one context
        run.open_chromium(tab, hosts, victim)
    moved = [(run, tab) for run in runs for tab in run.moved]
    master = hosts.servers[victim].process
    try:
        with ThreadPoolExecutor(len(moved)) as pool:
            started = time.monotonic()
            if how == signal.SIGTERM:
                os.kill(master.pid, signal.SIGTERM)  # as `systemctl stop` or a rolling update
            else:
                os.killpg(master.pid, signal.SIGKILL)  # the host is gone, workers and all
            returns = [pool.submit(run.come_back, tab) for run, tab in moved]
            chromium_back = {}
            for run in runs:
                wait_for_model(run.chromium.page, "where", f"v !== {run.chromium.where!r}",
                               timeout=int(FAILOVER_BOUND * 1000) + 5000)
                chromium_back[run.proxy.kind] = time.monotonic()
            for done in returns:
                done.result()
        master.wait(timeout=30)  # a stopped host exits once drained
        print()
        for run in runs:
            run.check(hosts, survivor)
            print(run.report(how, started, chromium_back[run.proxy.kind]))
        tabs = [tab for run in runs for tab in run.tabs]
        delays = _closed_by_logout(tabs, tabs[0].browser.logout)
        assert delays[-1] < LOGOUT_BOUND
    finally:
        for run in runs:
            for tab in run.tabs:
                tab.ws.close()


def test_readme_shows_every_recipe_and_the_ingress_annotations_as_shipped():
    readme = (ROOT / "README.md").read_text()
    deploy = ROOT / "examples" / "deploy"
    for recipe in sorted(deploy.iterdir()):
        assert f"`{recipe.name}`" in readme, f"README's Deployment section does not name examples/deploy/{recipe.name}"
    ingress = yaml.safe_load((deploy / "ingress-nginx.yaml").read_text())
    assert ingress["kind"] == "Ingress" and ingress["apiVersion"] == "networking.k8s.io/v1"
    shown = re.search(r"^  ```yaml\n(?P<body>(?:  nginx\.ingress.*\n)+)  ```$", readme, re.M)
    assert shown, "README shows no ingress-nginx annotations block"
    assert yaml.safe_load(textwrap.dedent(shown.group("body"))) == ingress["metadata"]["annotations"]
