"""app/auth/logout_events.py: logouts every worker (SQLite, one host) or every host (Redis) sees."""
from __future__ import annotations

import re
import sqlite3
import time

import pytest

from bokeh_flask.app.auth import logout_events
from bokeh_flask.app.auth.logins import default_store_url, login_store_url
from bokeh_flask.app.auth.logout_events import events_url, open_events, user_digest
from bokeh_flask.app.config.settings import build_settings


@pytest.fixture(params=["sqlite", "redis"])
def events_at(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'logins.sqlite3'}"
    return request.getfixturevalue("redis_url")


def test_a_logout_reaches_the_other_channels_not_its_own(events_at):
    """Two channels on one place are what two workers (or hosts) see."""
    first, second = open_events(events_at), open_events(events_at)
    assert first.poll() == second.poll() == set()
    first.publish("alice")
    second.publish("bob")
    assert first.poll() == {user_digest("bob")}
    assert second.poll() == {user_digest("alice")}
    assert first.poll() == second.poll() == set()  # each event once


def test_a_channel_reads_only_logouts_after_it_started(events_at):
    open_events(events_at).publish("alice")
    late = open_events(events_at)
    assert late.poll() == set()
    open_events(events_at).publish("bob")
    assert late.poll() == {user_digest("bob")}


def test_events_hold_a_digest_only(tmp_path, redis_url):
    """No identity, login id or cookie in the store: the user's digest and a time."""
    path = tmp_path / "logins.sqlite3"
    open_events(f"sqlite:///{path}").publish("alice@example.com")
    (seq, user, at), = sqlite3.connect(path).execute("SELECT seq, user, at FROM logout_events").fetchall()
    assert user == user_digest("alice@example.com") and abs(at - time.time()) < 60
    channel = open_events(redis_url)
    channel.publish("alice@example.com")
    (_, fields), = channel.redis.xrevrange(channel.KEY, count=1)  # the newest
    assert fields == {b"user": user_digest("alice@example.com").encode()}


def test_old_events_are_deleted(tmp_path, monkeypatch):
    path = tmp_path / "logins.sqlite3"
    channel = open_events(f"sqlite:///{path}")
    channel.publish("alice")
    now = time.time()
    monkeypatch.setattr(logout_events.time, "time", lambda: now + logout_events.EVENT_TTL + 1)
    channel.publish("bob")
    users = [row[0] for row in sqlite3.connect(path).execute("SELECT user FROM logout_events")]
    assert users == [user_digest("bob")]


def test_redis_url_carries_logouts_and_is_the_default_login_store(tmp_path):
    sqlite = "sqlite:///srv/logins.sqlite3"
    plain = build_settings(overrides={"state_dir": str(tmp_path)}, environ={})
    assert events_url(plain) == login_store_url(plain) == default_store_url(plain)
    assert default_store_url(plain) == f"sqlite:///{tmp_path}/logins.sqlite3"  # no name from the secret
    shared = build_settings(environ={"BOKEH_FLASK_REDIS_URL": "redis://r:6379/0"})
    assert events_url(shared) == login_store_url(shared) == "redis://r:6379/0"
    own_store = build_settings(overrides={"redis_url": "redis://r:6379/0", "login_store": sqlite}, environ={})
    assert login_store_url(own_store) == sqlite
    assert events_url(own_store) == "redis://r:6379/0"
    redis_store = build_settings(config={"BOKEH_LOGIN_STORE": "redis://r:6379/1"}, environ={})
    assert events_url(redis_store) == "redis://r:6379/1"  # a Redis login store reaches every host
    assert build_settings(config={"BOKEH_REDIS_URL": "redis://c:1/0"}, environ={}).redis_url == "redis://c:1/0"


@pytest.mark.parametrize("url, message", [
    ("memcached://x", "sqlite:///path or redis://"),
    ("redis://127.0.0.1:1/0", "logout events redis://127.0.0.1:1"),
    ("sqlite:///no/such/dir/x.sqlite3", "logout events /no/such/dir/x.sqlite3"),
])
def test_unusable_channels_say_why(url, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        open_events(url)
