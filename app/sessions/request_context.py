"""The page request's facts kept on the server, so session tokens stay small.

Bokeh puts the page request's headers, cookies and arguments (and what the app's
``process_request`` returned) into the session token, so that a session built elsewhere (a
worker that never saw the page, another host, a restart) shows the app the same
``session_context.request``. A token travels in the websocket's ``Sec-WebSocket-Protocol``
header, so a page with a few KB of cookies made a token longer than the 8 KiB header line
nginx and other proxies accept by default, and its websocket failed.

Here the page's facts are written once, when its token is minted, under a random reference
(:data:`CONTEXT_KEY` in the token, with the session id and the user they belong to), to a
store every worker that may rebuild the session reads: the host's private directory
(SQLite), or Redis with ``--redis-url`` (every host). The token keeps the session id, its
expiry, the user and the owning worker: a few hundred bytes whatever the page carries.

A session built from a token reads the facts back (:func:`expand`): the app sees an
identical request on the page build and on any rebuild. A reference the store does not hold
(the store was down, the entry expired, a token minted by another server) rebuilds the
session from what the websocket request itself carries, with one warning: the tab is never
blank. A reference that names another session's or another user's facts is refused (403),
as a forged token is.
"""
from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ..auth.logins import keyed_digest, namespace_for, open_private_sqlite
from ..config import state_dir
from ..config.settings import Settings
from .errors import HTTPError
from .tokens import CONTEXT_KEY, payload_from_json, payload_to_json, short_id

log = logging.getLogger(__name__)

#: While the store fails, how long pages and rebuilds go without it before it is tried
#: again: an unreachable Redis host would otherwise hold every page for its connect timeout.
RETRY_AFTER = 5.0
#: How long the facts are kept beyond the token's lifetime (a session made from an unexpired
#: token may be rebuilt until it expires; a margin for clocks and slow reconnects).
KEEP_AFTER_EXPIRY = 120.0


@dataclass(frozen=True)
class PageFacts:
    """What a page request left for its session: for its session id and user only."""

    session_id: str
    user: str | None
    #: ``headers``, ``cookies``, ``arguments`` and the values of ``process_request``
    payload: dict[str, Any]

    def to_json(self) -> str:
        return payload_to_json({"session_id": self.session_id, "user": self.user, "payload": self.payload})

    @classmethod
    def from_json(cls, text: str | bytes) -> PageFacts:
        data = payload_from_json(text)
        return cls(data["session_id"], data["user"], data["payload"])


class FactStore(Protocol):
    """Where page facts wait for a session to be built again, shared by the workers that may
    build it."""

    def put(self, ref: str, facts: PageFacts, ttl: float) -> None:
        """Keep ``facts`` under ``ref`` for ``ttl`` seconds."""

    def get(self, ref: str) -> PageFacts | None:
        """The facts under ``ref`` (None: not held, expired, or the store is unreachable)."""


class SQLiteFacts:
    """Page facts in the host's private directory: the workers of one host share them."""

    def __init__(self, path: str, namespace: bytes) -> None:
        self.path = path
        self.namespace = namespace
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._db()  # a directory that is not private fails at start-up

    def _db(self) -> sqlite3.Connection:
        """This process's connection (none crosses gunicorn's fork)."""
        if self._connection is None or self._pid != os.getpid():
            db = open_private_sqlite(self.path)
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash of the OS may lose the last ones
            db.execute("CREATE TABLE IF NOT EXISTS facts (ref TEXT PRIMARY KEY, facts TEXT, until REAL)")
            self._connection, self._pid = db, os.getpid()
        return self._connection

    def put(self, ref: str, facts: PageFacts, ttl: float) -> None:
        now = time.time()
        db = self._db()
        db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?, ?)",
                   (keyed_digest(ref, self.namespace), facts.to_json(), now + ttl))
        if secrets.randbelow(256) == 0:  # now and then, the expired ones go
            db.execute("DELETE FROM facts WHERE until < ?", (now,))

    def get(self, ref: str) -> PageFacts | None:
        row = self._db().execute("SELECT facts, until FROM facts WHERE ref = ?",
                                 (keyed_digest(ref, self.namespace),)).fetchone()
        if row is None or row[1] < time.time():
            return None
        return PageFacts.from_json(row[0])


class RedisFacts:
    """Page facts in Redis: every worker of every host reads them."""

    PREFIX = "bokeh-flask:facts:"

    def __init__(self, url: str, namespace: bytes) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.namespace = namespace

    def _key(self, ref: str) -> str:
        return self.PREFIX + keyed_digest(ref, self.namespace)

    def put(self, ref: str, facts: PageFacts, ttl: float) -> None:
        self.redis.set(self._key(ref), facts.to_json(), ex=max(1, int(ttl)))

    def get(self, ref: str) -> PageFacts | None:
        text = self.redis.get(self._key(ref))
        return PageFacts.from_json(text) if isinstance(text, (bytes, str)) else None


def for_settings(settings: Settings) -> FactStore:
    """Redis when ``redis_url`` is set (every host can rebuild any session), else the
    host's private directory."""
    namespace = namespace_for(settings.cookie_secret)
    if settings.redis_url:
        return RedisFacts(settings.redis_url, namespace)
    path = os.path.join(state_dir.prepare(settings.state_dir), "page-facts.sqlite3")
    return SQLiteFacts(path, namespace)


class PageFactsKeeper:
    """Mints references and reads facts back, through a :class:`FactStore`, with one warning
    per outage while the store cannot be reached."""

    def __init__(self, store: FactStore, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._failing = False
        self._retry_at = 0.0

    def keep(self, session_id: str, user: str | None, payload: dict[str, Any]) -> str:
        """Store ``payload`` for this session and return its reference. A store that cannot
        take it is warned about once: the token stays small all the same (a page's cookies
        would make it too long for proxies), and a rebuild of this session uses the
        websocket request's facts."""
        ref = secrets.token_urlsafe(16)
        if self._resting():
            return ref
        try:
            self.store.put(ref, PageFacts(session_id, user, payload), self.ttl)
        except Exception as exc:
            self._warn(f"cannot keep a page's request facts ({exc}): a session rebuilt elsewhere "
                       "will see its websocket request instead")
        else:
            self._recovered()
        return ref

    def expand(self, session_id: str, user: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        """A token's payload with the page facts its reference names put back; unchanged
        without a reference. :class:`HTTPError` 403 for facts of another session or user;
        a reference the store does not hold gives the payload without them, and a warning."""
        ref = payload.get(CONTEXT_KEY)
        if not isinstance(ref, str):
            return payload
        rest = {k: v for k, v in payload.items() if k != CONTEXT_KEY}
        facts = None if self._resting() else self._read(ref)
        if facts is None:
            log.warning("session %s: the page's request facts are gone (expired, or kept where this "
                        "server cannot read them): rebuilding it from the websocket request",
                        short_id(session_id))
            return rest
        if facts.session_id != session_id or facts.user != user:
            raise HTTPError(403, "Invalid session token: its request context belongs to another session")
        return {**facts.payload, **rest}

    def _read(self, ref: str) -> PageFacts | None:
        try:
            facts = self.store.get(ref)
        except Exception as exc:
            self._warn(f"cannot read page request facts ({exc})")
            return None
        self._recovered()
        return facts

    def _resting(self) -> bool:
        """Whether the store failed less than :data:`RETRY_AFTER` seconds ago."""
        return self._failing and time.monotonic() < self._retry_at

    def _warn(self, message: str) -> None:
        self._retry_at = time.monotonic() + RETRY_AFTER
        if not self._failing:
            self._failing = True
            log.warning("%s; said once until the store answers again", message)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("the page request facts store answers again")
