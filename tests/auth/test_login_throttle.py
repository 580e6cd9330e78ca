"""The login throttle from the attacker's side (issue 21, item 3), against the standalone
Flask-Login provider under gunicorn's gevent worker, with real client addresses (on Linux
every 127.0.0.x is loopback, and each is a client of its own to the server):

1. an attacker's wrong guesses refuse its own address, not the victim's right password;
2. 100 concurrent guesses get at most ``login_attempts`` passwords checked, with SQLite and
   with Redis (the test app counts its ``check_credentials`` calls in a file);
3. behind a proxy, only ``--use-xheaders`` tells its clients apart, and without it the
   server says so once;
4. a login store gone away refuses logins (503), it does not check them uncounted.
"""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.auth import LOGIN_SERVER, USERS, client_at, launch_flask_app, login_form_token, try_login
from tests.support.servers import start_redis

GUESSES = 100
LIMIT = 5  # login_attempts' default


def refusals(log: str, status: int = 429) -> list[str]:
    """The server's log lines of refused logins."""
    return [line for line in log.splitlines() if f"refused ({status}" in line]


def test_an_attacker_locks_out_its_own_address_not_its_victim():
    server = launch_flask_app(LOGIN_SERVER, "gunicorn", workers=2)
    try:
        attacker, second_attacker, victim = (client_at(f"127.0.0.{n}") for n in (2, 3, 4))
        assert [try_login(attacker, server.url, "alice", f"guess-{n}").status_code
                for n in range(LIMIT)] == [401] * LIMIT
        for password in ("guess-5", USERS["alice"]):  # from its address, even the right one
            refused = try_login(attacker, server.url, "alice", password)
            assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 300
        # alice is being guessed at: another address that fails for her gets one guess ...
        assert [try_login(second_attacker, server.url, "alice", f"other-{n}").status_code
                for n in range(2)] == [401, 429]
        # ... and an address that has not failed is checked: alice logs in
        assert try_login(victim, server.url, "alice", USERS["alice"]).status_code == 302
        assert try_login(attacker, server.url, "bob", USERS["bob"]).status_code == 302
        log = server.log_text()
        assert "Traceback" not in log
        lines = refusals(log)
        assert len(lines) == 3, lines
        assert all("WARNING" in line and "login of 'alice' from 127.0.0." in line for line in lines)
        assert "from 127.0.0.2 refused" in lines[0] and "5 failed logins of this user from this address" in lines[0]
        assert "from 127.0.0.3 refused" in lines[2] and "one guess per address" in lines[2]
    finally:
        server.stop()


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_concurrent_guesses_get_at_most_the_limit_checked(store, request, tmp_path):
    checks = tmp_path / "checks"
    env = {"AUTH_TEST_CHECK_LOG": str(checks)}
    if store == "redis":
        env["BOKEH_LOGIN_STORE"] = request.getfixturevalue("redis_url")
    server = launch_flask_app(LOGIN_SERVER, "gunicorn", env=env, workers=2)
    try:
        clients = [client_at("127.0.0.5") for _ in range(GUESSES)]
        tokens = [login_form_token(client, server.url) for client in clients]
        start = threading.Barrier(GUESSES)

        def guess(n: int) -> requests.Response:
            start.wait()
            return try_login(clients[n], server.url, "alice", f"guess-{n}", token=tokens[n])

        with ThreadPoolExecutor(GUESSES) as pool:
            answers = list(pool.map(guess, range(GUESSES)))
        assert Counter(answer.status_code for answer in answers) == {401: LIMIT, 429: GUESSES - LIMIT}
        assert checks.read_text().splitlines() == ["alice"] * LIMIT
        assert all(int(answer.headers["Retry-After"]) >= 1 for answer in answers if answer.status_code == 429)
        log = server.log_text()
        assert len(refusals(log)) == GUESSES - LIMIT and "Traceback" not in log
    finally:
        server.stop()


def forwarded_client(address: str) -> requests.Session:
    """A browser behind a proxy at 127.0.0.1 that names it in ``X-Forwarded-For``."""
    session = requests.Session()
    session.headers["X-Forwarded-For"] = address
    return session


def test_behind_a_proxy_only_use_xheaders_tells_its_clients_apart():
    for use_xheaders in (False, True):
        env = {"BOKEH_USE_XHEADERS": "yes"} if use_xheaders else {}
        server = launch_flask_app(LOGIN_SERVER, "gunicorn", env=env)
        try:
            attacker, victim = forwarded_client("198.51.100.7"), forwarded_client("198.51.100.8")
            for n in range(LIMIT):
                assert try_login(attacker, server.url, "alice", f"guess-{n}").status_code == 401
            answer = try_login(victim, server.url, "alice", USERS["alice"])
            log = server.log_text()
            warnings = log.count("carry X-Forwarded-For but --use-xheaders is off")
            if use_xheaders:
                assert answer.status_code == 302 and warnings == 0
            else:  # both are the proxy's address: the attacker refused the victim too
                assert answer.status_code == 429 and warnings == 1
                assert "login of 'alice' from 127.0.0.1 refused" in log
        finally:
            server.stop()


def test_a_login_store_gone_away_refuses_with_503_not_500():
    process, url = start_redis()
    server = launch_flask_app(LOGIN_SERVER, "gunicorn", env={"BOKEH_LOGIN_STORE": url})
    try:
        client = requests.Session()
        token = login_form_token(client, server.url)
        process.terminate()
        process.wait(timeout=10)
        answer = try_login(client, server.url, "alice", USERS["alice"], token=token)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
        log = server.log_text()
        assert "Traceback" not in log
        [line] = refusals(log, status=503)
        assert "login of 'alice' from 127.0.0.1 refused (503, retry in 30 s): it cannot be counted" in line
    finally:
        server.stop()
        if process.poll() is None:
            process.kill()
