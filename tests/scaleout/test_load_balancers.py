"""Two hosts behind real HAProxy and real nginx, each running its shipped affinity recipe.

Two ``bokeh-flask serve`` hosts (two workers and a private directory each, one shared
Redis) sit behind Debian's HAProxy with ``examples/deploy/haproxy.cfg`` (cookie insertion)
and behind Debian's nginx with ``examples/deploy/nginx-affinity.conf`` (consistent hashing
of a cookie nginx sets), each used as shipped but for its ports. Browsers are raw clients
with cookie jars of their own (and one chromium tab per failover).

- Every tab's websocket meets its own page's document (a nonce in the title), and the app's
  code ran once for each session on all hosts together; the browsers spread over both
  hosts, and a logout reaches the user's tabs on both.
- A host stopped (SIGTERM to its master) or killed (SIGKILL to all its processes): each of
  its tabs reconnects on BokehJS's schedule and is back within 5 s of its drop on the
  other host, its session rebuilt once from the token with the page's request context
  (user, arguments); the other host's tabs stay as they were; the user's logout then
  reaches the moved tabs. The times are printed (``pytest -s``).

Runtime: about 40 s on a shared 2-core machine (two host boots side by side, and one host
boot again per failover case).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.browser import model_value, wait_for_model
from tests.support.haproxy import require_haproxy, start_haproxy
from tests.support.hosts import Hosts, RawBrowser, Tab
from tests.support.nginx import AFFINITY_CONFIG, error_log, require_nginx, start_nginx
from tests.support.servers import APPS, Server

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


@pytest.fixture(params=BALANCERS)
def balancer(request, hosts, tmp_path) -> Server:
    """A balancer of its own per test: nothing it learnt of a stopped host carries over."""
    if request.param == "haproxy":
        require_haproxy()
        proxy = start_haproxy(hosts.upstreams, tmp_path)
    else:
        require_nginx()
        proxy = start_nginx(hosts.upstreams, tmp_path, site=AFFINITY_CONFIG)
    yield proxy
    proxy.stop()
    if request.param == "nginx":
        assert "[emerg]" not in error_log(proxy) and "[alert]" not in error_log(proxy)


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
    finally:
        for tab in tabs:
            tab.ws.close()


@pytest.mark.browser
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_tabs_of_a_lost_host_come_back_on_the_other(balancer, hosts, page, how):
    page.context.request.post(balancer.url + "/signin", form={"name": "alice"}, max_redirects=0)
    page.goto(f"{balancer.url}/{APP.stem}?tab=99")
    wait_for_model(page, "where", "v.startsWith('nonce=')")
    chromium_where = model_value(page, "where")
    victim = hosts.of_pid(int(chromium_where.rsplit("=", 1)[1]))
    survivor = 1 - victim
    tabs = _tabs_on_every_host(balancer, hosts, "alice", 4)
    moved = [tab for tab in tabs if hosts.of_pid(tab.pid) == victim]
    stayed = [tab for tab in tabs if tab not in moved]
    master = hosts.servers[victim].process.pid
    try:
        dropped: dict[int, float] = {}
        back: dict[int, float] = {}

        def come_back(tab: Tab) -> None:
            tab.ws.wait_closed()
            dropped[tab.number] = time.monotonic()
            back[tab.number] = tab.browser.reconnect(tab, dropped[tab.number])

        with ThreadPoolExecutor(len(moved)) as pool:
            started = time.monotonic()
            if how == signal.SIGTERM:
                os.kill(master, signal.SIGTERM)  # as `systemctl stop` or a rolling update
            else:
                os.killpg(master, signal.SIGKILL)  # the host is gone, workers and all
            returns = [pool.submit(come_back, tab) for tab in moved]
            wait_for_model(page, "where", f"v !== {chromium_where!r}", timeout=int(FAILOVER_BOUND * 1000) + 5000)
            chromium_back = time.monotonic() - started
            for done in returns:
                done.result()
        for tab in moved:
            nonce, pid, who = RawBrowser.document(tab)
            assert hosts.of_pid(pid) == survivor and nonce != tab.nonce  # rebuilt there, not kept
            assert who == f"user=alice tab={tab.number}"  # with the page's request context
            assert hosts.created_count(tab.session_id) == 2  # the page's, and once on the survivor
        chromium_pid = int(model_value(page, "where").rsplit("=", 1)[1])
        assert hosts.of_pid(chromium_pid) == survivor and model_value(page, "who") == "user=alice tab=99"
        for tab in stayed:  # untouched: the same document, the same websocket
            assert RawBrowser.document(tab)[:2] == (tab.nonce, tab.pid)
        outage = [back[n] - dropped[n] for n in sorted(back)]
        print(f"\n{balancer.kind}, host {how.name}: {len(moved)} raw tabs back "
              f"{', '.join(f'{s * 1000:.0f}' for s in outage)} ms after their drop "
              f"(signal to drop {', '.join(f'{(dropped[n] - started) * 1000:.0f}' for n in sorted(dropped))} ms); "
              f"chromium tab back {chromium_back * 1000:.0f} ms after the signal")
        assert max(outage) < FAILOVER_BOUND and chromium_back < FAILOVER_BOUND
        delays = _closed_by_logout(tabs, tabs[0].browser.logout)
        assert delays[-1] < LOGOUT_BOUND
    finally:
        for tab in tabs:
            tab.ws.close()
        hosts.restart(victim)
