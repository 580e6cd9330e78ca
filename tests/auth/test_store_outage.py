"""A logout while the shared login store is down (issue 21, finding 5).

Two hosts (two servers, two workers each) share a real redis-server, reached through a
proxy the test can take down without losing Redis' data. While it is down, logins fail
closed (503, never a traceback), ``/readyz`` says why, and a logout still logs the user
out at once; once Redis is back the logout reaches it, so a cookie saved before the logout
works on neither host. It is never a logout that the recovery undoes.
"""
from __future__ import annotations

import os
import signal
import time
from urllib.parse import urlsplit

import pytest
import redis
import requests

from tests.support.auth import LOGIN_SERVER, TIMEOUT, launch_flask_app, login, logout
from tests.support.tcp_proxy import TcpProxy

WHOAMI = "/whoami"


@pytest.fixture
def hosts(redis_url, tmp_path):
    proxy = TcpProxy(urlsplit(redis_url).port)
    started = []
    for name in ("a", "b"):
        started.append(launch_flask_app(LOGIN_SERVER, "gunicorn", workers=2, env={
            "BOKEH_LOGIN_STORE": "", "BOKEH_FLASK_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            "BOKEH_FLASK_STATE_DIR": str(tmp_path / name)}))
    yield proxy, started
    for server in started:
        server.stop()
    proxy.close()


def replay(server, cookies) -> int:
    """A request carrying a copy of the cookies saved before the logout."""
    return requests.get(server.url + WHOAMI, cookies=cookies, timeout=TIMEOUT, allow_redirects=False).status_code


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_logout_while_the_store_is_down_is_never_undone(hosts, redis_url):
    proxy, (host_a, host_b) = hosts
    alice = login(host_a.url, "alice")
    saved = requests.utils.dict_from_cookiejar(alice.cookies)
    assert replay(host_a, saved) == 200 and replay(host_b, saved) == 200

    proxy.go_down()
    ready = requests.get(host_a.url + "/readyz", timeout=TIMEOUT)
    assert ready.status_code == 503 and "login store cannot be reached" in ready.text, ready.text
    assert replay(host_b, saved) == 503  # fails closed: the login cannot be checked

    assert logout(alice, host_a.url).status_code == 302  # logged out at once, on this host
    assert "session=;" in alice.cookies.get("session", "session=;") or not alice.cookies.get("session")
    assert replay(host_a, saved) == 302  # this host knows: to the login page
    assert replay(host_b, saved) == 503  # the other cannot check: refused

    proxy.down = False
    wait_for(lambda: requests.get(host_a.url + "/readyz", timeout=TIMEOUT).status_code == 200)
    wait_for(lambda: "logouts made while it was unreachable" in host_a.log_text())
    assert replay(host_b, saved) == 302 and replay(host_a, saved) == 302
    assert not list(redis.Redis.from_url(redis_url).scan_iter("bokeh-flask:login:*"))
    for server in (host_a, host_b):
        log = server.log_text()
        assert "Traceback" not in log and " 500 " not in log, log[-3000:]
        assert "the login store cannot be reached" in log or server is host_b


def test_the_pending_logout_survives_a_restart_of_the_host(hosts, redis_url, tmp_path):
    """The logout is on the host's disk, not in a worker: a host stopped before the store is
    back delivers it as it starts again."""
    proxy, (host_a, host_b) = hosts
    alice = login(host_a.url, "alice")
    saved = requests.utils.dict_from_cookiejar(alice.cookies)
    proxy.go_down()
    assert logout(alice, host_a.url).status_code == 302
    host_a.stop()
    proxy.down = False
    restarted = launch_flask_app(LOGIN_SERVER, "gunicorn", env={
        "BOKEH_LOGIN_STORE": "", "BOKEH_FLASK_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
        "BOKEH_FLASK_STATE_DIR": str(tmp_path / "a")})
    try:
        assert "logouts made while it was unreachable" in restarted.log_text()
        assert replay(host_b, saved) == 302 and replay(restarted, saved) == 302
    finally:
        restarted.stop()


def test_a_worker_that_boots_during_the_outage_serves_and_the_server_lives(hosts):
    """A worker replaced while the store is down (a crash, max_requests) boots all the same:
    only the server's first start insists on a store that answers."""
    proxy, (host_a, _) = hosts
    proxy.go_down()
    victim = host_a.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in host_a.worker_pids() and len(host_a.worker_pids()) == 2)
    for _ in range(8):  # whichever worker answers
        assert requests.get(host_a.url + "/health", timeout=TIMEOUT).status_code == 200
        assert requests.get(host_a.url + "/readyz", timeout=TIMEOUT).status_code == 503
    assert host_a.process.poll() is None and "Worker failed to boot" not in host_a.log_text()
    proxy.down = False
    wait_for(lambda: all(requests.get(host_a.url + "/readyz", timeout=TIMEOUT).status_code == 200
                         for _ in range(4)))
    assert login(host_a.url, "alice")
