"""Logins that logging out ends everywhere, and login throttling (core side: no Flask).

A signed login cookie proves who logged in, not that they have not logged out since: a saved
copy replayed after logout would still work, in every worker, until it expires. So each
login gets a random id, kept in the cookie and in a store every worker reads; logging out
deletes it, and a cookie naming no live login is refused (a page redirects to the login
page, a websocket gets 403). A login also ends after ``login_idle_timeout`` seconds without
a request. The same store counts login attempts for throttling (:mod:`app.auth.throttle`): an
attempt is reserved, atomically with the check that allows it, before its password is
checked, so concurrent guesses cannot all pass the check before any is counted.

Two stores, chosen by ``login_store``:

- ``sqlite:///path`` (the default: ``logins.sqlite3`` in the server's private directory,
  :mod:`..config.state_dir`): the workers of one host, no extra service. SQLite's own locking makes
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
from contextlib import closing
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, TypeVar
from urllib.parse import unquote, urlsplit

from ..config import state_dir
from ..config.settings import Settings, SettingsError
from ..sessions.errors import HTTPError

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


class AttemptStore(Protocol):
    """Failed login attempts, counted for :mod:`app.auth.throttle` (a :class:`LoginStore` is one)."""

    def reserve_attempt(self, keys: Sequence[str], window: float,
                        refuse: Callable[[Attempts], Refused | None]) -> Ticket | Refused:
        """One step, atomic across workers: ``refuse`` reads the attempts in the window; if
        it returns None, one attempt is counted under every key and its ticket returned,
        else what it returned (nothing is counted). :class:`StoreUnavailable` when the store
        cannot answer."""

    def release_attempt(self, ticket: Ticket) -> None:
        """Uncount a reserved attempt (its password was right)."""

    def clear_failures(self, key: str) -> None:
        """Forget ``key``'s attempts (a successful login)."""


class LoginStore(AttemptStore, Protocol):
    """Live logins, shared by every worker that may see their cookies."""

    def start(self, user: str) -> str:
        """Record a new login of ``user``; returns its id."""

    def check(self, login_id: str, user: str) -> bool:
        """Whether ``login_id`` is a live login of ``user`` (not ended, not idle too long)."""

    def end(self, login_id: str) -> None:
        """End a login (logout); idempotent."""

    def attach(self, login_id: str, data: str) -> None:
        """Keep ``data`` with a login until it ends (a single sign-on login's claims and
        tokens, sealed by their owner: the store sees an opaque string)."""

    def attached(self, login_id: str) -> str | None:
        """What :meth:`attach` kept with ``login_id`` (None: nothing, or the login ended)."""

    def revoke(self, value: str, ttl: float) -> None:
        """Remember, for ``ttl`` seconds, that a cookie value (a remember-me cookie saved
        before a logout) must not log anyone in again."""

    def revoked(self, value: str) -> bool:
        """Whether :meth:`revoke` named this value."""

    def ping(self) -> None:
        """Raise when the store cannot be reached."""


class Attempts(Protocol):
    """The attempts in the window under each key being reserved, as the reservation sees them."""

    def count(self, key: str) -> int:
        """Attempts under ``key`` in the window."""

    def frees_in(self, key: str, below: int) -> float:
        """Seconds until fewer than ``below`` attempts under ``key`` are in the window."""


@dataclass(frozen=True)
class Ticket:
    """A reserved attempt: what :meth:`LoginStore.release_attempt` removes, as (where,
    which) pairs in the store's own terms, and when it was counted."""

    entries: tuple[tuple[str, int | str], ...]
    at: float


Refused = TypeVar("Refused")


class StoreUnavailable(HTTPError):
    """The store cannot be reached (Redis down, a SQLite file locked too long): logins can
    be neither checked nor counted, so none is accepted (503, never a traceback). The
    ``detail`` (for the log) says why."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(503, "Service Unavailable: the login store cannot be reached; try again shortly")
        self.detail = detail

    def __str__(self) -> str:
        return self.detail or self.reason


class _SQLiteAttempts:
    """:class:`Attempts` read inside a reservation's transaction."""

    def __init__(self, db: sqlite3.Connection, digests: dict[str, str], now: float, window: float) -> None:
        self.db, self.digests, self.now, self.window = db, digests, now, window

    def count(self, key: str) -> int:
        count: int = self.db.execute("SELECT COUNT(*) FROM failures WHERE key = ? AND at >= ?",
                                     (self.digests[key], self.now - self.window)).fetchone()[0]
        return count

    def frees_in(self, key: str, below: int) -> float:
        extra = self.count(key) - below
        if extra < 0:
            return 0.0
        at: float = self.db.execute("SELECT at FROM failures WHERE key = ? AND at >= ? ORDER BY at LIMIT 1 OFFSET ?",
                             (self.digests[key], self.now - self.window, extra)).fetchone()[0]
        return at + self.window - self.now


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
            db.execute("CREATE TABLE IF NOT EXISTS attached (id TEXT PRIMARY KEY, data TEXT)")
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
        db.execute("DELETE FROM attached WHERE id NOT IN (SELECT id FROM logins)")
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
        key = self._digest(login_id)
        self._db().execute("DELETE FROM logins WHERE id = ?", (key,))
        self._db().execute("DELETE FROM attached WHERE id = ?", (key,))

    def attach(self, login_id: str, data: str) -> None:
        self._db().execute("INSERT OR REPLACE INTO attached VALUES (?, ?)", (self._digest(login_id), data))

    def attached(self, login_id: str) -> str | None:
        row = self._db().execute("SELECT data FROM attached WHERE id = ?", (self._digest(login_id),)).fetchone()
        return None if row is None else str(row[0])

    def revoke(self, value: str, ttl: float) -> None:
        self._db().execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)", (self._digest(value), time.time() + ttl))

    def revoked(self, value: str) -> bool:
        row = self._db().execute("SELECT until FROM revoked WHERE value = ?", (self._digest(value),)).fetchone()
        return row is not None and row[0] > time.time()

    def reserve_attempt(self, keys: Sequence[str], window: float,
                        refuse: Callable[[Attempts], Refused | None]) -> Ticket | Refused:
        """In a ``BEGIN IMMEDIATE`` transaction (one writer across processes) on a connection
        of its own: the shared one may be inside another thread's statement."""
        digests = {key: self._digest(key) for key in keys}
        try:
            with closing(open_private_sqlite(self.path)) as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    now = time.time()
                    db.execute("DELETE FROM failures WHERE at < ?", (now - window,))
                    verdict = refuse(_SQLiteAttempts(db, digests, now, window))
                    entries: list[tuple[str, int | str]] = []
                    if verdict is None:
                        for digest in digests.values():
                            row = db.execute("INSERT INTO failures VALUES (?, ?)", (digest, now)).lastrowid
                            assert row is not None  # an INSERT sets it
                            entries.append((digest, row))
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, state_dir.PrivateDirError) as exc:
            raise StoreUnavailable(f"login store {self.path}: {exc}") from None
        return Ticket(tuple(entries), now) if verdict is None else verdict

    def release_attempt(self, ticket: Ticket) -> None:
        """By row id, key and time: a row id freed meanwhile may have been reused."""
        for digest, row in ticket.entries:
            self._db().execute("DELETE FROM failures WHERE rowid = ? AND key = ? AND at = ?",
                               (row, digest, ticket.at))

    def clear_failures(self, key: str) -> None:
        self._db().execute("DELETE FROM failures WHERE key = ?", (self._digest(key),))

    def ping(self) -> None:
        self._db().execute("SELECT 1").fetchone()


def default_store_url(settings: Settings) -> str:
    """``logins.sqlite3`` in the server's private directory: the workers of one host share
    it (servers with other secrets share the file, never each other's records)."""
    return f"sqlite:///{os.path.join(state_dir.prepare(settings.state_dir), 'logins.sqlite3')}"


def login_store_url(settings: Settings) -> str:
    """``login_store``, else ``redis_url`` (Redis for logins too), else the default file."""
    return settings.login_store or settings.redis_url or default_store_url(settings)


def check_reachable(settings: Settings) -> None:
    """A server's first start (the gunicorn master): every Redis the settings name answers,
    else :class:`SettingsError` naming the flag and the host (never the URL: it may hold
    a password). Workers that boot later, during an outage, start all the same."""
    for flag, url in (("--login-store", settings.login_store), ("--redis-url", settings.redis_url)):
        parts = urlsplit(url or "")
        if url is None or parts.scheme not in ("redis", "rediss", "unix"):
            continue
        try:
            import redis

            redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5).ping()
        except ImportError:
            raise SettingsError(f"{flag} needs the redis package: pip install 'bokeh-flask[redis]'") from None
        except Exception as exc:  # the redis client's connection errors
            where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
            raise SettingsError(f"{flag}: Redis at {where} does not answer ({exc})") from None


def open_store(url: str, idle_timeout: float, namespace: bytes = b"", reachable: bool = True) -> LoginStore:
    """The store ``url`` names (``sqlite:///path`` or ``redis://...``); ValueError when it
    cannot be used, with a message saying why. With ``reachable`` (a server's first start)
    a Redis that does not answer is such a reason; without it (a worker that boots during
    an outage), the store is returned all the same: it refuses logins until Redis answers,
    and the worker keeps serving everything else."""
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
            from .redis_logins import RedisLoginStore

            store = RedisLoginStore(url, idle_timeout, namespace)
            if reachable:
                store.ping()
            return store
        except ValueError:
            raise
        except Exception as exc:  # the redis client's connection errors
            raise ValueError(f"login store {parts.scheme}://{parts.hostname}:{parts.port}: {exc}") from None
    raise ValueError(f"login store must be sqlite:///path or redis://host:port/db, got {url!r}")
