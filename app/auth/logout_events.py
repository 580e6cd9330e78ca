"""Logout events: a logout in one worker ends the user's tabs in every worker (core side).

Logging out ends the login in the shared login store at once, but the user's open tabs
live in whichever workers built their sessions. So the worker that handles a logout also
records an event, and every worker's core polls for new ones every
:data:`POLL_INTERVAL` seconds and ends that user's sessions and websockets there. Two
channels, chosen by :func:`events_url`:

- ``sqlite:///path`` (the login-store file of the host): the workers of one host, no extra
  service; a poll is one read on the table's primary key.
- ``redis://...`` (``--redis-url``, or a Redis login store): a Redis stream that every
  worker of every host reads after the last entry it saw; Redis' clock orders it.

An event holds a digest of the user's identity, keyed with the store's namespace
(:func:`.logins.namespace_for`), and nothing else (no login id, no cookie). SQLite
events are deleted after :data:`EVENT_TTL` seconds; the Redis stream keeps
at most :data:`REDIS_MAX_EVENTS` and expires :data:`EVENT_TTL` seconds after the last
logout (trimming by age would trust every host's clock).
"""
from __future__ import annotations

import os
import sqlite3
import time
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ..config import state_dir
from ..config.settings import Settings
from .logins import keyed_digest, login_store_url, open_private_sqlite

#: How often each worker looks for logouts (s): a logout reaches every tab within ~this.
POLL_INTERVAL = 0.3
#: How long an event is kept (s); a worker polls far more often.
EVENT_TTL = 60.0
#: A Redis stream keeps about this many events at most, whatever their age.
REDIS_MAX_EVENTS = 10_000


def user_digest(user: str, namespace: bytes = b"") -> str:
    """What an event says of the user: a keyed digest, so the store holds no identity and
    a server with another secret never takes the event for one of its users."""
    return keyed_digest(user, namespace)


class LogoutEvents(Protocol):
    """Logouts, seen by every worker that shares the channel."""

    #: the key of :func:`user_digest` (servers with other secrets ignore these events)
    namespace: bytes

    def publish(self, user: str) -> None:
        """Tell the other workers that ``user`` logged out."""

    def poll(self) -> set[str]:
        """Digests (:func:`user_digest`) of users logged out elsewhere since the last poll
        in this process (this process's own events are left out: it ended those itself)."""

    def ping(self) -> None:
        """Raise when the channel cannot be reached."""


class SQLiteLogoutEvents:
    """Logout events in a table of the host's SQLite login-store file."""

    def __init__(self, path: str, namespace: bytes = b"") -> None:
        self.path = path
        self.namespace = namespace
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._last = 0
        self._own: set[int] = set()
        self._db()  # a bad path fails at start-up

    def _db(self) -> sqlite3.Connection:
        """This process's connection; a new process starts reading after the newest event
        (its sessions are all newer than the events before it)."""
        if self._connection is None or self._pid != os.getpid():
            db = open_private_sqlite(self.path)
            db.execute("CREATE TABLE IF NOT EXISTS logout_events "
                       "(seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT, at REAL)")
            self._last = db.execute("SELECT COALESCE(MAX(seq), 0) FROM logout_events").fetchone()[0]
            self._own = set()
            self._connection, self._pid = db, os.getpid()
        return self._connection

    def publish(self, user: str) -> None:
        now = time.time()
        db = self._db()
        cursor = db.execute("INSERT INTO logout_events (user, at) VALUES (?, ?)",
                            (user_digest(user, self.namespace), now))
        seq = cursor.lastrowid
        assert seq is not None  # an INSERT sets it
        self._own.add(seq)
        db.execute("DELETE FROM logout_events WHERE at < ?", (now - EVENT_TTL,))

    def poll(self) -> set[str]:
        rows = self._db().execute("SELECT seq, user FROM logout_events WHERE seq > ? ORDER BY seq",
                                  (self._last,)).fetchall()
        if not rows:
            return set()
        self._last = rows[-1][0]
        users = {user for seq, user in rows if seq not in self._own}
        self._own.difference_update(seq for seq, _ in rows)
        return users

    def ping(self) -> None:
        self._db().execute("SELECT 1").fetchone()


class RedisLogoutEvents:
    """Logout events in a Redis stream: every worker of every host reads them."""

    KEY = "bokeh-flask:logout-events"

    def __init__(self, url: str, namespace: bytes = b"") -> None:
        self.namespace = namespace
        try:
            import redis
        except ImportError:
            raise ValueError("Redis logout events need the redis package: "
                             "pip install 'bokeh-flask[redis]'") from None
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._pid: int | None = None
        self._last = "0-0"
        self._own: set[bytes] = set()

    def _position(self) -> str:
        """The last entry this process has seen; a new process starts after the newest."""
        if self._pid != os.getpid():
            newest = self.redis.xrevrange(self.KEY, count=1)
            entry_id = newest[0][0] if newest else None
            self._last = entry_id.decode() if isinstance(entry_id, bytes) else "0-0"
            self._own, self._pid = set(), os.getpid()
        return self._last

    def publish(self, user: str) -> None:
        self._position()
        pipe = self.redis.pipeline()
        pipe.xadd(self.KEY, {"user": user_digest(user, self.namespace)}, maxlen=REDIS_MAX_EVENTS,
                  approximate=True)
        pipe.expire(self.KEY, int(EVENT_TTL))
        self._own.add(pipe.execute()[0])

    def poll(self) -> set[str]:
        answer = self.redis.xread({self.KEY: self._position()})
        if not answer:
            return set()
        assert isinstance(answer, list)  # RESP2 (the client's protocol): [[stream, entries]]
        entries = answer[0][1]
        self._last = entries[-1][0].decode()
        users = {fields[b"user"].decode() for entry_id, fields in entries if entry_id not in self._own}
        self._own.difference_update(entry_id for entry_id, _ in entries)
        return users

    def ping(self) -> None:
        self.redis.ping()


def events_url(settings: Settings) -> str:
    """Redis when ``redis_url`` is set (every host), else the login store (a Redis one
    reaches every host too; the default SQLite file, the workers of this host)."""
    return settings.redis_url or login_store_url(settings)


def open_events(url: str, namespace: bytes = b"", reachable: bool = True) -> LogoutEvents:
    """The channel ``url`` names; ValueError, with the reason, when it cannot be used (with
    ``reachable``, a Redis that does not answer is one, as for :func:`.logins.open_store`)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        try:
            return SQLiteLogoutEvents(path, namespace)
        except sqlite3.Error as exc:
            raise ValueError(f"logout events {path}: {exc}") from None
        except state_dir.PrivateDirError as exc:
            raise ValueError(f"logout events {exc}") from None
    if parts.scheme in ("redis", "rediss", "unix"):
        try:
            events = RedisLogoutEvents(url, namespace)
            if reachable:
                events.ping()
            return events
        except ValueError:
            raise
        except Exception as exc:  # the redis client's connection errors
            raise ValueError(f"logout events {parts.scheme}://{parts.hostname}:{parts.port}: {exc}") from None
    raise ValueError(f"logout events need sqlite:///path or redis://host:port/db, got {url!r}")
