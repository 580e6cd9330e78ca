"""The login store in Redis (``redis://host:port/db``): every worker of every host shares its
logins, logouts and failed attempts; keys expire by themselves. The store's contract and
the SQLite store are in :mod:`.logins`; this module is imported only when a Redis URL is
configured (the ``redis`` package is the ``bokeh-flask[redis]`` extra).
"""
from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Callable, Sequence

from .logins import TOUCH_INTERVAL, Attempts, Refused, StoreUnavailable, Ticket, keyed_digest, new_login_id

if TYPE_CHECKING:
    from redis.client import Pipeline


class _RedisAttempts:
    """:class:`Attempts` read while the reservation WATCHes their keys (so a change after
    the read makes its MULTI/EXEC fail)."""

    def __init__(self, pipe: Pipeline, names: dict[str, str], now: float, window: float) -> None:
        self.pipe, self.names, self.now, self.window = pipe, names, now, window

    def count(self, key: str) -> int:
        return self.pipe.zcount(self.names[key], self.now - self.window, "+inf")

    def frees_in(self, key: str, below: int) -> float:
        extra = self.count(key) - below
        if extra < 0:
            return 0.0
        oldest = self.pipe.zrangebyscore(self.names[key], self.now - self.window, "+inf",
                                         start=extra, num=1, withscores=True)
        # redis-py types no withscores=True overload: its (member, score) pairs look like members
        score: float = oldest[0][1]  # type: ignore[assignment]
        return score + self.window - self.now


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
        if not isinstance(stored, bytes) or stored.decode("utf-8", "replace") != user:  # None: no such login
            return False
        ttl = self._ttl()
        if ttl and self.redis.ttl(key) < ttl - TOUCH_INTERVAL:
            self.redis.expire(key, ttl)
            self.redis.expire(self._attached(login_id), ttl)
        return True

    def end(self, login_id: str) -> None:
        self.redis.delete(self._login(login_id), self._attached(login_id))

    def _attached(self, login_id: str) -> str:
        return f"{self.PREFIX}attached:{self._digest(login_id)}"

    def attach(self, login_id: str, data: str) -> None:
        self.redis.set(self._attached(login_id), data, ex=self._ttl())

    def attached(self, login_id: str) -> str | None:
        data = self.redis.get(self._attached(login_id))
        return data.decode("utf-8") if isinstance(data, bytes) else None

    def revoke(self, value: str, ttl: float) -> None:
        self.redis.set(f"{self.PREFIX}revoked:{self._digest(value)}", 1, ex=max(1, int(ttl)))

    def revoked(self, value: str) -> bool:
        return bool(self.redis.exists(f"{self.PREFIX}revoked:{self._digest(value)}"))

    def _failures_key(self, key: str) -> str:
        return f"{self.PREFIX}failures:{self._digest(key)}"

    def reserve_attempt(self, keys: Sequence[str], window: float,
                        refuse: Callable[[Attempts], Refused | None]) -> Ticket | Refused:
        """Optimistic: the keys are WATCHed while ``refuse`` reads them, and the attempt is
        written in MULTI/EXEC only if none changed meanwhile; else read again."""
        from redis.exceptions import RedisError, WatchError

        names = {key: self._failures_key(key) for key in keys}
        member = secrets.token_hex(8)
        try:
            with self.redis.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(*names.values())  # type: ignore[no-untyped-call]  # unannotated in redis-py
                        now = time.time()
                        verdict = refuse(_RedisAttempts(pipe, names, now, window))
                        if verdict is not None:
                            return verdict
                        pipe.multi()
                        for name in names.values():
                            pipe.zremrangebyscore(name, 0, f"({now - window}")
                            pipe.zadd(name, {member: now})
                            pipe.expire(name, max(1, int(window) + 1))
                        pipe.execute()
                        return Ticket(tuple((name, member) for name in names.values()), now)
                    except WatchError:
                        continue
        except RedisError as exc:
            raise StoreUnavailable(f"login store redis: {exc}") from None

    def release_attempt(self, ticket: Ticket) -> None:
        pipe = self.redis.pipeline()
        for name, member in ticket.entries:
            pipe.zrem(name, member)
        pipe.execute()

    def clear_failures(self, key: str) -> None:
        self.redis.delete(self._failures_key(key))

    def ping(self) -> None:
        self.redis.ping()
