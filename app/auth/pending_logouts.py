"""Logouts the shared store has not confirmed yet: kept on the host until it has them.

A logout ends a login in the shared store (Redis across hosts) and tells the other workers
through the logout events. When that store is down, answering 500 would leave the user
logged in, and forgetting the logout would let a saved cookie work again once the store is
back: a logout that a recovery undoes. So a logout that cannot reach the store still logs
the user out here at once (the cookie is cleared), and is written to a file of the host's
private directory (:mod:`..config.state_dir`), where every worker of the host finds it:

- each worker treats a login or cookie named there as ended, before asking the store
  (other hosts cannot ask the store either while it is down, so they refuse the login);
- each worker's logout-events job (:meth:`PendingLogouts.flush`, every
  ``POLL_INTERVAL``) delivers what is pending once the store answers again, and deletes it.

The file survives a worker's crash and a restart of the server. Deliveries are idempotent
(ending an ended login, revoking twice, a second logout event), so two workers delivering
the same entry at once do no harm.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from typing import Callable, Sequence

from ..config import state_dir
from ..config.settings import Settings
from .logins import (
    Attempts,
    LoginStore,
    Refused,
    StoreUnavailable,
    Ticket,
    keyed_digest,
    namespace_for,
    open_private_sqlite,
)

log = logging.getLogger(__name__)

#: What may be pending, and what each delivers: end a login (its id), revoke a saved
#: cookie (its value, for ``ttl`` seconds from the logout), publish a logout (the user).
KINDS = ("end", "revoke", "publish")
#: A pending logout event older than this is dropped undelivered: tabs on other hosts
#: had long lost their logins (their checks failed while the store was down).
PUBLISH_TTL = 24 * 3600.0
#: An undelivered login end is kept this long: past it, the login has expired anyway
#: (``login_idle_timeout``, or the remember-me cookie's life).
PENDING_END_TTL = 366 * 24 * 3600.0
#: Deliver is called with the entry's value and the seconds left of its ``ttl``.
Deliver = Callable[[str, float], None]


class PendingLogouts:
    """The host's file of undelivered logouts (one per private directory)."""

    def __init__(self, path: str, namespace: bytes) -> None:
        self.path = path
        self.namespace = namespace
        self._deliver: dict[str, Deliver] = {}
        #: this server's rows (servers with other secrets may share the file)
        self._tag = keyed_digest("pending logouts", namespace)[:16]
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._db()  # a bad path fails at start-up

    def _db(self) -> sqlite3.Connection:
        """This process's connection (none crosses gunicorn's fork)."""
        if self._connection is None or self._pid != os.getpid():
            db = open_private_sqlite(self.path)
            db.execute("CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "server TEXT, kind TEXT, digest TEXT, value TEXT, until REAL)")
            db.execute("CREATE INDEX IF NOT EXISTS pending_digest ON pending (kind, digest)")
            self._connection, self._pid = db, os.getpid()
        return self._connection

    def deliver_with(self, kind: str, deliver: Deliver) -> None:
        """How entries of ``kind`` reach the shared store (each worker says so at start)."""
        assert kind in KINDS
        self._deliver[kind] = deliver

    def add(self, kind: str, value: str, ttl: float) -> None:
        """Keep ``value`` until delivered, or ``ttl`` seconds (an expired cookie needs no
        revoking; an undelivered login end is kept for as long as the login could live)."""
        assert kind in KINDS
        self._db().execute("INSERT INTO pending (server, kind, digest, value, until) VALUES (?, ?, ?, ?, ?)",
                           (self._tag, kind, keyed_digest(value, self.namespace), value, time.time() + ttl))

    def holds(self, kind: str, value: str) -> bool:
        """Whether ``value`` waits to be delivered as ``kind`` (a login ended here)."""
        row = self._db().execute("SELECT 1 FROM pending WHERE kind = ? AND digest = ? LIMIT 1",
                                 (kind, keyed_digest(value, self.namespace))).fetchone()
        return row is not None

    def flush(self) -> int:
        """Deliver what is pending, oldest first; stop at the first failure (the store is
        still down). Returns the count delivered."""
        db = self._db()
        now = time.time()
        rows = db.execute("SELECT seq, kind, value, until FROM pending WHERE server = ? ORDER BY seq",
                          (self._tag,)).fetchall()
        if not rows:
            return 0  # the usual case: one read, no write lock
        db.execute("DELETE FROM pending WHERE until < ?", (now,))
        delivered = 0
        for seq, kind, value, until in rows:
            if until < now:
                continue
            deliver = self._deliver.get(kind)
            if deliver is None:
                continue  # a kind this worker has no store for
            try:
                deliver(value, until - now)
            except Exception as exc:
                log.debug("pending logouts not delivered yet: %s", exc)
                break
            db.execute("DELETE FROM pending WHERE seq = ?", (seq,))
            delivered += 1
        if delivered:
            log.warning("the shared login store has the %d logouts made while it was unreachable", delivered)
        return delivered


def for_settings(settings: Settings) -> PendingLogouts:
    """The host's file of pending logouts, in the private directory ``settings`` names."""
    path = os.path.join(state_dir.prepare(settings.state_dir), "pending-logouts.sqlite3")
    return PendingLogouts(path, namespace_for(settings.cookie_secret))


class StoreWithPending:
    """A :class:`LoginStore` whose logouts never fail: one the store cannot take waits in
    :class:`PendingLogouts` (and counts as done on this host meanwhile). Every other
    failure of the store becomes :class:`StoreUnavailable`, with one warning per outage."""

    def __init__(self, store: LoginStore, pending: PendingLogouts) -> None:
        self.store = store
        self.pending = pending
        self._down = False
        pending.deliver_with("end", lambda login_id, ttl: store.end(login_id))
        pending.deliver_with("revoke", store.revoke)

    def _failed(self, exc: Exception) -> StoreUnavailable:
        if not self._down:
            self._down = True
            log.warning("the login store cannot be reached (%s): logins are refused and logouts kept "
                        "on this host until it is back", exc)
        return exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(str(exc))

    def _answered(self) -> None:
        if self._down:
            self._down = False
            log.warning("the login store answers again")

    def start(self, user: str) -> str:
        try:
            login_id = self.store.start(user)
        except Exception as exc:
            raise self._failed(exc) from None
        self._answered()
        return login_id

    def check(self, login_id: str, user: str) -> bool:
        if self.pending.holds("end", login_id):
            return False
        try:
            live = self.store.check(login_id, user)
        except Exception as exc:
            raise self._failed(exc) from None
        self._answered()
        return live

    def end(self, login_id: str) -> None:
        try:
            self.store.end(login_id)
        except Exception as exc:
            self._failed(exc)
            self.pending.add("end", login_id, PENDING_END_TTL)

    def attach(self, login_id: str, data: str) -> None:
        try:
            self.store.attach(login_id, data)
        except Exception as exc:
            raise self._failed(exc) from None

    def attached(self, login_id: str) -> str | None:
        try:
            return self.store.attached(login_id)
        except Exception as exc:
            raise self._failed(exc) from None

    def revoke(self, value: str, ttl: float) -> None:
        try:
            self.store.revoke(value, ttl)
        except Exception as exc:
            self._failed(exc)
            self.pending.add("revoke", value, ttl)

    def revoked(self, value: str) -> bool:
        if self.pending.holds("revoke", value):
            return True
        try:
            return self.store.revoked(value)
        except Exception as exc:
            raise self._failed(exc) from None

    def ping(self) -> str | None:
        """Why the store cannot serve logins now (None: it answers)."""
        try:
            self.store.ping()
        except Exception as exc:
            return f"the login store cannot be reached: {exc}"
        return None

    def reserve_attempt(self, keys: Sequence[str], window: float,
                        refuse: Callable[[Attempts], Refused | None]) -> Ticket | Refused:
        try:
            return self.store.reserve_attempt(keys, window, refuse)
        except Exception as exc:
            raise self._failed(exc) from None

    def release_attempt(self, ticket: Ticket) -> None:
        try:
            self.store.release_attempt(ticket)
        except Exception as exc:
            raise self._failed(exc) from None

    def clear_failures(self, key: str) -> None:
        try:
            self.store.clear_failures(key)
        except Exception as exc:
            raise self._failed(exc) from None
