"""Logins that logging out ends everywhere, and login throttling (core side: no Flask).

A signed login cookie proves who logged in, not that they have not logged out since: a saved
copy replayed after logout would still work, in every worker, until it expires. So each
login gets a random id, kept in the cookie and in a store every worker reads; logging out
deletes it, and a cookie naming no live login is refused (a page redirects to the login
page, a websocket gets 403). A login also ends after ``login_idle_timeout`` seconds without
a request. The same store counts failed logins for throttling.

Two stores, chosen by ``login_store``:

- ``sqlite:///path`` (the default: ``logins.sqlite3`` in the server's private directory,
  :mod:`.state_dir`): the workers of one host, no extra service. SQLite's own locking makes
  it safe across processes; each call is a short local read or write. A file the server
  did not make for itself (another user's, or one others may write) is refused.
- ``redis://host:port/db``: every worker of every host (the ``redis`` package, extra
  ``bokeh-flask[redis]``). Keys expire by themselves. ``redis_url`` makes this the
  default.

Only digests of ids and keys are stored, keyed with a namespace derived from the cookie
secret (:func:`namespace_for`): nothing here can be replayed as a login, and servers with
different secrets that share a store never see each other's logins, logouts or failures.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from typing import Protocol
from urllib.parse import unquote, urlsplit

from . import state_dir
from .settings import Settings

#: A login's ``seen`` time is written at most this often (seconds): checks stay reads.
TOUCH_INTERVAL = 60.0


def new_login_id() -> str:
    """A random login id (URL-safe, no ``:``, so it can prefix an identity)."""
    return secrets.token_urlsafe(24)


def namespace_for(secret: str | bytes | None) -> bytes:
    """The key that separates one server's records from another's in a shared store (the
    servers of one deployment share the cookie secret, so they share a namespace)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8", "surrogatepass")
    return hashlib.sha256(b"bokeh-flask store\0" + (secret or b"")).digest()


def keyed_digest(value: str, namespace: bytes) -> str:
    return hmac.new(namespace, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


#: Seconds a worker waits for another worker's hold on a store file to end.
SQLITE_BUSY_TIMEOUT = 10.0


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A connection to a store file in WAL mode. Workers booting together open the same
    fresh file at once, and switching it to WAL can fail with "database is locked" at once,
    without waiting out the busy timeout: retried until that timeout, instead of a worker
    that fails to boot (which stops the whole gunicorn master)."""
    db = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                db.close()
                raise
            time.sleep(0.05)


def open_private_sqlite(path: str) -> sqlite3.Connection:
    """:func:`connect_sqlite` on a file that is this user's own and writable by no one else
    (made 0600 when new; SQLite gives its WAL and shared-memory files the same mode, and
    any that already exist are checked too: in a shared directory they could be planted)."""
    state_dir.ensure_private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.lexists(path + suffix):
            state_dir.ensure_private_file(path + suffix)
    return connect_sqlite(path)


class LoginStore(Protocol):
    """Live logins, shared by every worker that may see their cookies."""

    def start(self, user: str) -> str:
        """Record a new login of ``user``; returns its id."""

    def check(self, login_id: str, user: str) -> bool:
        """Whether ``login_id`` is a live login of ``user`` (not ended, not idle too long)."""

    def end(self, login_id: str) -> None:
        """End a login (logout); idempotent."""

    def revoke(self, value: str, ttl: float) -> None:
        """Remember, for ``ttl`` seconds, that a cookie value (a remember-me cookie saved
        before a logout) must not log anyone in again."""

    def revoked(self, value: str) -> bool:
        """Whether :meth:`revoke` named this value."""

    def failure(self, key: str, window: float) -> int:
        """Count one failed login under ``key``; returns the failures in the last window."""

    def failures(self, key: str, window: float) -> tuple[int, float]:
        """(failures under ``key`` in the window, seconds until the oldest leaves it)."""

    def clear_failures(self, key: str) -> None:
        """Forget ``key``'s failures (a successful login)."""

    def ping(self) -> None:
        """Raise when the store cannot be reached."""


class SQLiteLoginStore:
    """Logins in a SQLite file: one host's workers share it."""

    def __init__(self, path: str, idle_timeout: float, namespace: bytes = b"") -> None:
        self.path = path
        self.idle_timeout = idle_timeout
        self.namespace = namespace
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._db()  # create the file and tables now: a bad path fails at start-up

    def _db(self) -> sqlite3.Connection:
        """This process's connection (a connection must not cross gunicorn's fork)."""
        if self._connection is None or self._pid != os.getpid():
            db = open_private_sqlite(self.path)
            db.execute("CREATE TABLE IF NOT EXISTS logins (id TEXT PRIMARY KEY, user TEXT, seen REAL)")
            db.execute("CREATE TABLE IF NOT EXISTS revoked (value TEXT PRIMARY KEY, until REAL)")
            db.execute("CREATE TABLE IF NOT EXISTS failures (key TEXT, at REAL)")
            db.execute("CREATE INDEX IF NOT EXISTS failures_key ON failures (key, at)")
            self._connection, self._pid = db, os.getpid()
        return self._connection

    def _digest(self, value: str) -> str:
        return keyed_digest(value, self.namespace)

    def start(self, user: str) -> str:
        login_id = new_login_id()
        now = time.time()
        db = self._db()
        db.execute("INSERT INTO logins VALUES (?, ?, ?)", (self._digest(login_id), user, now))
        if self.idle_timeout:
            db.execute("DELETE FROM logins WHERE seen < ?", (now - self.idle_timeout,))
        db.execute("DELETE FROM revoked WHERE until < ?", (now,))
        return login_id

    def check(self, login_id: str, user: str) -> bool:
        key = self._digest(login_id)
        row = self._db().execute("SELECT user, seen FROM logins WHERE id = ?", (key,)).fetchone()
        if row is None or row[0] != user:
            return False
        now = time.time()
        if self.idle_timeout and now - row[1] > self.idle_timeout:
            self._db().execute("DELETE FROM logins WHERE id = ?", (key,))
            return False
        if now - row[1] > TOUCH_INTERVAL:
            self._db().execute("UPDATE logins SET seen = ? WHERE id = ?", (now, key))
        return True

    def end(self, login_id: str) -> None:
        self._db().execute("DELETE FROM logins WHERE id = ?", (self._digest(login_id),))

    def revoke(self, value: str, ttl: float) -> None:
        self._db().execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)", (self._digest(value), time.time() + ttl))

    def revoked(self, value: str) -> bool:
        row = self._db().execute("SELECT until FROM revoked WHERE value = ?", (self._digest(value),)).fetchone()
        return row is not None and row[0] > time.time()

    def failure(self, key: str, window: float) -> int:
        now = time.time()
        db = self._db()
        db.execute("INSERT INTO failures VALUES (?, ?)", (self._digest(key), now))
        db.execute("DELETE FROM failures WHERE at < ?", (now - window,))
        return self.failures(key, window)[0]

    def failures(self, key: str, window: float) -> tuple[int, float]:
        now = time.time()
        count, oldest = self._db().execute(
            "SELECT COUNT(*), MIN(at) FROM failures WHERE key = ? AND at >= ?",
            (self._digest(key), now - window)).fetchone()
        return count, (oldest + window - now) if oldest is not None else 0.0

    def clear_failures(self, key: str) -> None:
        self._db().execute("DELETE FROM failures WHERE key = ?", (self._digest(key),))

    def ping(self) -> None:
        self._db().execute("SELECT 1").fetchone()


class RedisLoginStore:
    """Logins in Redis: every worker of every host shares them."""

    PREFIX = "bokeh-flask:"

    def __init__(self, url: str, idle_timeout: float, namespace: bytes = b"") -> None:
        try:
            import redis
        except ImportError:
            raise ValueError("a redis:// login store needs the redis package: "
                             "pip install 'bokeh-flask[redis]'") from None
        self.idle_timeout = idle_timeout
        self.namespace = namespace
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.redis.ping()  # an unreachable Redis fails at start-up, with its address

    def _digest(self, value: str) -> str:
        return keyed_digest(value, self.namespace)

    def _login(self, login_id: str) -> str:
        return f"{self.PREFIX}login:{self._digest(login_id)}"

    def _ttl(self) -> int | None:
        return int(self.idle_timeout) if self.idle_timeout else None

    def start(self, user: str) -> str:
        login_id = new_login_id()
        self.redis.set(self._login(login_id), user, ex=self._ttl())
        return login_id

    def check(self, login_id: str, user: str) -> bool:
        key = self._login(login_id)
        stored = self.redis.get(key)
        if stored is None or stored.decode("utf-8", "replace") != user:
            return False
        ttl = self._ttl()
        if ttl and self.redis.ttl(key) < ttl - TOUCH_INTERVAL:
            self.redis.expire(key, ttl)
        return True

    def end(self, login_id: str) -> None:
        self.redis.delete(self._login(login_id))

    def revoke(self, value: str, ttl: float) -> None:
        self.redis.set(f"{self.PREFIX}revoked:{self._digest(value)}", 1, ex=max(1, int(ttl)))

    def revoked(self, value: str) -> bool:
        return bool(self.redis.exists(f"{self.PREFIX}revoked:{self._digest(value)}"))

    def _failures_key(self, key: str) -> str:
        return f"{self.PREFIX}failures:{self._digest(key)}"

    def failure(self, key: str, window: float) -> int:
        now = time.time()
        name = self._failures_key(key)
        pipe = self.redis.pipeline()
        pipe.zadd(name, {f"{now}:{secrets.token_hex(4)}": now})
        pipe.zremrangebyscore(name, 0, now - window)
        pipe.expire(name, max(1, int(window)))
        pipe.execute()
        return self.failures(key, window)[0]

    def failures(self, key: str, window: float) -> tuple[int, float]:
        now = time.time()
        name = self._failures_key(key)
        count = self.redis.zcount(name, now - window, "+inf")
        oldest = self.redis.zrangebyscore(name, now - window, "+inf", start=0, num=1, withscores=True)
        return count, (oldest[0][1] + window - now) if oldest else 0.0

    def clear_failures(self, key: str) -> None:
        self.redis.delete(self._failures_key(key))

    def ping(self) -> None:
        self.redis.ping()


def default_store_url(settings: Settings) -> str:
    """``logins.sqlite3`` in the server's private directory: the workers of one host share
    it (servers with other secrets share the file, never each other's records)."""
    return f"sqlite:///{os.path.join(state_dir.prepare(settings.state_dir), 'logins.sqlite3')}"


def login_store_url(settings: Settings) -> str:
    """``login_store``, else ``redis_url`` (Redis for logins too), else the default file."""
    return settings.login_store or settings.redis_url or default_store_url(settings)


def open_store(url: str, idle_timeout: float, namespace: bytes = b"") -> LoginStore:
    """The store ``url`` names (``sqlite:///path`` or ``redis://...``); ValueError when it
    cannot be used, with a message saying why."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        try:
            return SQLiteLoginStore(path, idle_timeout, namespace)
        except sqlite3.Error as exc:
            raise ValueError(f"login store {path}: {exc}") from None
        except state_dir.PrivateDirError as exc:
            raise ValueError(f"login store {exc}") from None
    if parts.scheme in ("redis", "rediss", "unix"):
        try:
            return RedisLoginStore(url, idle_timeout, namespace)
        except ValueError:
            raise
        except Exception as exc:  # the redis client's connection errors
            raise ValueError(f"login store {parts.scheme}://{parts.hostname}:{parts.port}: {exc}") from None
    raise ValueError(f"login store must be sqlite:///path or redis://host:port/db, got {url!r}")
