"""app/auth/logins.py: the login store (SQLite and Redis) and its attempt counts."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bokeh_flask.app.auth import logins
from bokeh_flask.app.auth.logins import open_store


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'logins.sqlite3'}"
    return request.getfixturevalue("redis_url")


def test_a_login_lives_until_its_logout(store_url):
    store = open_store(store_url, idle_timeout=3600)
    login_id = store.start("alice")
    assert ":" not in login_id
    assert store.check(login_id, "alice")
    assert not store.check(login_id, "bob")  # a login is one user's
    assert not store.check("made-up", "alice")
    store.end(login_id)
    store.end(login_id)  # idempotent
    assert not store.check(login_id, "alice")


def test_a_second_store_on_the_same_place_sees_the_same_logins(store_url):
    """What two workers (or hosts) see."""
    first, second = open_store(store_url, 3600), open_store(store_url, 3600)
    login_id = first.start("alice")
    assert second.check(login_id, "alice")
    second.end(login_id)
    assert not first.check(login_id, "alice")


def test_idle_logins_end(tmp_path, monkeypatch):
    store = open_store(f"sqlite:///{tmp_path / 'idle.sqlite3'}", idle_timeout=100)
    login_id = store.start("alice")
    now = time.time()
    monkeypatch.setattr(logins.time, "time", lambda: now + 70)
    assert store.check(login_id, "alice")  # within the timeout, and seen again now
    monkeypatch.setattr(logins.time, "time", lambda: now + 140)
    assert store.check(login_id, "alice")  # 70 s after the last request
    monkeypatch.setattr(logins.time, "time", lambda: now + 300)
    assert not store.check(login_id, "alice")


def test_revoked_values(store_url):
    store = open_store(store_url, 3600)
    assert not store.revoked("remember-cookie")
    store.revoke("remember-cookie", ttl=60)
    assert store.revoked("remember-cookie")


def test_reserved_attempts_count_until_released_or_cleared(store_url):
    store = open_store(store_url, 3600)
    key, other = f"user:alice-{time.time()}", f"client:bob-{time.time()}"
    seen = []

    def admit(attempts):
        seen.append((attempts.count(key), attempts.count(other)))

    tickets = [store.reserve_attempt([key, other], 60, admit) for _ in range(3)]
    assert seen == [(0, 0), (1, 1), (2, 2)]
    store.release_attempt(tickets[1])  # a right password

    def read(attempts):
        return attempts.count(key), attempts.frees_in(key, 1), attempts.frees_in(key, 2), attempts.frees_in(key, 3)

    count, last_leaves, first_leaves, free = store.reserve_attempt([key], 60, read)
    assert count == 2 and 0 < first_leaves <= last_leaves <= 60 and free == 0.0
    assert store.reserve_attempt([key], 60, read)[0] == 2  # a refusal counts nothing
    store.clear_failures(key)
    assert store.reserve_attempt([key], 60, read)[0] == 0
    assert store.reserve_attempt([other], 60, lambda attempts: attempts.count(other)) == 2  # not cleared


def test_attempts_leave_the_window(store_url, monkeypatch):
    store = open_store(store_url, 3600)
    key = f"pair:127.0.0.1 alice-{time.time()}"
    store.reserve_attempt([key], 100, lambda attempts: None)
    now = time.time()
    monkeypatch.setattr(logins.time, "time", lambda: now + 50)
    assert store.reserve_attempt([key], 100, lambda attempts: attempts.count(key)) == 1
    monkeypatch.setattr(logins.time, "time", lambda: now + 101)
    assert store.reserve_attempt([key], 100, lambda attempts: attempts.count(key)) == 0


def test_concurrent_reservations_are_exact(store_url):
    """Twenty clients (each a store of its own: a connection, as a worker has) reserve five
    attempts each under one key, admitted while fewer than five are counted: five are."""
    key = f"pair:127.0.0.1 alice-{time.time()}"
    stores = [open_store(store_url, 3600) for _ in range(20)]
    start = threading.Barrier(len(stores))

    def guesses(store) -> int:
        start.wait()
        results = [store.reserve_attempt([key], 60, lambda a: "refused" if a.count(key) >= 5 else None)
                   for _ in range(5)]
        return sum(result != "refused" for result in results)

    with ThreadPoolExecutor(len(stores)) as pool:
        assert sum(pool.map(guesses, stores)) == 5


def test_nothing_stored_can_be_replayed(tmp_path):
    import sqlite3

    path = tmp_path / "plain.sqlite3"
    store = open_store(f"sqlite:///{path}", 3600)
    login_id = store.start("alice")
    store.revoke("remember-cookie-value", ttl=60)
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert login_id not in dump and "remember-cookie-value" not in dump


@pytest.mark.parametrize("url, message", [
    ("memcached://x", "sqlite:///path or redis://"),
    ("sqlite:///no/such/dir/x.sqlite3", "login store /no/such/dir"),
    ("redis://127.0.0.1:1/0", "login store redis://127.0.0.1:1"),
])
def test_an_unusable_store_is_one_clear_error(url, message):
    with pytest.raises(ValueError, match=message.replace("/", "/")):
        open_store(url, 3600)
