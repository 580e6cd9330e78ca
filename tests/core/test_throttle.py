"""app/auth/throttle.py: which failed logins refuse the next attempt, against both real stores."""
from __future__ import annotations

import logging
import shutil
import time
import uuid

import pytest

from bokeh_flask.app.auth import logins
from bokeh_flask.app.auth import throttle as throttle_module
from bokeh_flask.app.auth.logins import Ticket, open_store
from bokeh_flask.app.auth.throttle import LoginThrottle, Refusal
from bokeh_flask.app.config.settings import Settings
from tests.support.servers import start_redis

ATTACKER, SECOND_ATTACKER, VICTIM = "203.0.113.7", "203.0.113.8", "198.51.100.1"


@pytest.fixture(params=["sqlite", "redis"])
def throttle(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'logins.sqlite3'}" if request.param == "sqlite"
           else request.getfixturevalue("redis_url"))
    store = open_store(url, 3600)
    if request.param == "redis":
        store.redis.flushdb()  # the module's Redis is shared: each test counts from zero
    settings = Settings(login_attempts=5, login_address_attempts=12, login_attempt_window=300)
    return LoginThrottle(store, settings)


def user() -> str:
    return f"alice-{uuid.uuid4().hex[:8]}"


def fail(throttle: LoginThrottle, name: str, address: str, times: int = 1) -> None:
    for _ in range(times):
        assert isinstance(throttle.attempt(name, address), Ticket)


def test_a_guesser_refuses_its_own_address_not_its_victim(throttle, caplog):
    alice = user()
    fail(throttle, alice, ATTACKER, 5)
    with caplog.at_level(logging.WARNING, logger="bokeh_flask.app.auth.throttle"):
        refused = throttle.attempt(alice, ATTACKER)
    assert isinstance(refused, Refusal) and 1 <= refused.retry_after <= 300
    [line] = caplog.records
    assert line.levelno == logging.WARNING and line.exc_info is None
    message = line.getMessage()
    assert f"login of '{alice}' from {ATTACKER} refused (429, retry in {refused.retry_after} s)" in message
    assert "5 failed logins of this user from this address in the last 300 s" in message
    # the victim's own address, which has not failed, is checked; the attacker's other users too
    assert isinstance(throttle.attempt(alice, VICTIM), Ticket)
    assert isinstance(throttle.attempt(user(), ATTACKER), Ticket)


def test_guessed_at_from_many_addresses_a_user_gets_one_guess_per_address(throttle):
    alice = user()
    fail(throttle, alice, ATTACKER, 5)
    fail(throttle, alice, SECOND_ATTACKER)  # a fresh address gets its one guess
    refused = throttle.attempt(alice, SECOND_ATTACKER)
    assert isinstance(refused, Refusal)
    assert "6 failed logins of this user from all addresses" in refused.reason
    assert isinstance(throttle.attempt(alice, VICTIM), Ticket)


def test_an_address_failing_for_many_users_is_refused_for_all(throttle):
    for _ in range(3):
        fail(throttle, user(), ATTACKER, 4)
    refused = throttle.attempt(user(), ATTACKER)
    assert isinstance(refused, Refusal) and "12 failed logins from this address" in refused.reason
    assert isinstance(throttle.attempt(user(), VICTIM), Ticket)


def test_a_right_password_is_not_counted_and_clears_the_user_not_the_address(throttle):
    alice = user()
    fail(throttle, alice, VICTIM, 4)
    throttle.succeeded(alice, VICTIM, throttle.attempt(alice, VICTIM))
    fail(throttle, alice, VICTIM, 5)  # a fresh budget after logging in
    assert isinstance(throttle.attempt(alice, VICTIM), Refusal)
    # the address's count kept the 9 failures (not the success): 3 more, then refused
    fail(throttle, user(), VICTIM, 3)
    refused = throttle.attempt(user(), VICTIM)
    assert isinstance(refused, Refusal) and "12 failed logins from this address" in refused.reason


def test_refusals_are_not_counted_so_nobody_can_renew_them(throttle, monkeypatch):
    alice = user()
    fail(throttle, alice, ATTACKER, 5)
    now = time.time()
    monkeypatch.setattr(logins.time, "time", lambda: now + 100)
    for _ in range(20):
        refused = throttle.attempt(alice, ATTACKER)
        assert isinstance(refused, Refusal) and 195 <= refused.retry_after <= 201
    monkeypatch.setattr(logins.time, "time", lambda: now + 301)
    assert isinstance(throttle.attempt(alice, ATTACKER), Ticket)


def test_an_untrusted_forwarding_proxy_is_named_once(throttle, caplog, monkeypatch):
    monkeypatch.setattr(throttle_module, "_proxy_warned", False)
    trusted = LoginThrottle(throttle.store, throttle.settings.replace(use_xheaders=True))
    with caplog.at_level(logging.WARNING, logger="bokeh_flask.app.auth.throttle"):
        trusted.note_proxy("192.0.2.1", "198.51.100.1")
        throttle.note_proxy("192.0.2.1", None)
        throttle.note_proxy("192.0.2.1", "198.51.100.1")
        throttle.note_proxy("192.0.2.2", "198.51.100.2")
    [line] = caplog.records
    assert "requests from 192.0.2.1 carry X-Forwarded-For but --use-xheaders is off" in line.getMessage()


def test_a_store_that_cannot_count_refuses_with_503(tmp_path, caplog):
    """No password is checked uncounted: a Redis that went away, a SQLite file that cannot
    be opened any more, each refuse the attempt with one warning line."""
    process, url = start_redis()
    redis_store = open_store(url, 3600)
    process.terminate()
    process.wait(timeout=10)
    gone = tmp_path / "gone"
    gone.mkdir()
    sqlite_store = open_store(f"sqlite:///{gone / 'logins.sqlite3'}", 3600)
    shutil.rmtree(gone)
    for store in (redis_store, sqlite_store):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bokeh_flask.app.auth.throttle"):
            refused = LoginThrottle(store, Settings()).attempt("alice", VICTIM)
        assert isinstance(refused, Refusal) and (refused.status, refused.retry_after) == (503, 30)
        [line] = caplog.records
        assert line.exc_info is None
        assert f"login of 'alice' from {VICTIM} refused (503, retry in 30 s): it cannot be counted: login store" \
            in line.getMessage()
