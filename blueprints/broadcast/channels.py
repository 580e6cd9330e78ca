"""The channels that carry broadcasts (:mod:`bokeh_flask.app.sessions.broadcasts`) between
workers and hosts: bytes in, bytes out; the core decides what they mean.

- :class:`HostChannel`: the workers of this server on this host, through a table of
  ``broadcasts.sqlite3`` in the server's private directory (:mod:`...app.config.state_dir`:
  mode 0700, so no other user can read or plant a value), as the host's logout events do.
  Each worker polls it every :data:`HOST_POLL_INTERVAL`; rows are scoped to this gunicorn
  master (:func:`...app.runtime.handover.group_of_master`), so another server of the same
  user on the host never runs this one's handlers. The newest row of each app and name
  stays: a worker that boots later (a ``kill -HUP`` reload) starts from it.
- :class:`RedisChannel` (``--redis-url``): every worker of every host subscribes to one
  pub/sub channel; the newest message of each app and name is kept in a hash, written in
  the same script as the publish, so a worker that (re)subscribes reads what it missed.
  Redis stamps the message with its own clock (``TIME``), one clock for every host.

Redis down: a broadcast goes through the host channel instead (this host's workers get it)
and the log says, once until Redis answers again, that the other hosts were not reached.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import time
from typing import Any, Callable

import gevent

from ...app.auth.logins import keyed_digest, namespace_for, open_private_sqlite
from ...app.config import state_dir
from ...app.config.settings import Settings
from ...app.runtime import handover
from ...app.runtime.periodic import PeriodicCallback
from ...app.sessions.broadcasts import Message, local_stamp

log = logging.getLogger(__name__)

Receive = Callable[[Message], None]

#: How often each worker reads the host channel: a broadcast without Redis reaches the
#: other workers of the host within about this (the sending worker's sessions at once).
HOST_POLL_INTERVAL = 0.05
#: A superseded row stays this long (s), for workers polling behind; the newest stays.
HOST_KEEP = 60.0
#: Rows of another master (an earlier server on this host) go after this long (s).
STALE_SCOPE = 24 * 3600.0
#: The subscriber pings an idle Redis this often (s), so a vanished one is noticed.
REDIS_HEALTH_INTERVAL = 15.0
#: A subscriber that lost Redis tries again after this long, doubling up to the maximum.
REDIS_RETRY = (0.5, 5.0)

#: Publish and keep the newest per app and name, atomically: KEYS = (hash, channel),
#: ARGV = (field, nonce, body). Returns the message as published (stamp, space, body).
_PUBLISH = """
local t = redis.call('TIME')
local micros = t[1] .. string.format('%06d', tonumber(t[2]))
local stamp = string.rep('0', 17 - #micros) .. micros .. '-' .. ARGV[2]
local message = stamp .. ' ' .. ARGV[3]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (not current) or string.sub(current, 1, #stamp) < stamp then
  redis.call('HSET', KEYS[1], ARGV[1], message)
end
redis.call('PUBLISH', KEYS[2], message)
return message
"""


def _body(app: str, name: str, value: str) -> str:
    return json.dumps([app, name]) + "\n" + value  # json.dumps never writes a raw newline


def _parse(message: bytes | str) -> Message | None:
    text = message.decode() if isinstance(message, bytes) else message
    stamp, _, body = text.partition(" ")
    head, _, value = body.partition("\n")
    try:
        app, name = json.loads(head)
    except ValueError:
        return None
    return Message(str(app), str(name), stamp, value) if isinstance(app, str) and isinstance(name, str) else None


class HostChannel:
    """This server's workers on this host, through the private directory's SQLite file."""

    def __init__(self, path: str, scope: str) -> None:
        self.path = path
        self.scope = scope
        self._db: sqlite3.Connection = open_private_sqlite(path)
        # no fsync per broadcast (WAL still survives a crashed worker; a power cut may lose
        # the last values, which the next broadcast replaces anyway)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS broadcasts (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "scope TEXT, app TEXT, name TEXT, stamp TEXT, value TEXT, at REAL)")
        self._last = 0
        self._job: PeriodicCallback | None = None
        self._receive: Receive | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> HostChannel | None:
        """This worker's host channel; None (with why, in the log) where there is none."""
        scope = handover.group_of_master(os.getppid())
        if scope is None:
            return None  # not Linux: the workers of a host cannot be told apart from others
        try:
            path = os.path.join(state_dir.prepare(settings.state_dir), "broadcasts.sqlite3")
            return cls(path, scope)
        except (OSError, sqlite3.Error, state_dir.PrivateDirError) as exc:
            log.warning("broadcasts will not reach the other workers of this host: %s", exc)
            return None

    def start(self, receive: Receive) -> list[Message]:
        self._receive = receive
        self._last = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM broadcasts").fetchone()[0]
        rows = self._db.execute("SELECT app, name, stamp, value FROM broadcasts WHERE scope = ? AND seq <= ?",
                                (self.scope, self._last)).fetchall()
        self._job = PeriodicCallback(self.poll, HOST_POLL_INTERVAL)
        self._job.start()
        return [Message(*row) for row in rows]

    def stop(self) -> None:
        if self._job is not None:
            self._job.stop()
            self._job = None

    def publish(self, app: str, name: str, value: str) -> Message:
        message = Message(app, name, local_stamp(), value)
        now = time.time()
        seq = self._db.execute("INSERT INTO broadcasts (scope, app, name, stamp, value, at) VALUES (?, ?, ?, ?, ?, ?)",
                               (self.scope, app, name, message.stamp, value, now)).lastrowid
        self._db.execute("DELETE FROM broadcasts WHERE (scope = ? AND app = ? AND name = ? AND seq < ? AND at < ?) "
                         "OR (scope != ? AND at < ?)",
                         (self.scope, app, name, seq, now - HOST_KEEP, self.scope, now - STALE_SCOPE))
        return message

    def poll(self) -> None:
        """Hand over what the other workers sent since the last poll (this worker's own
        come back too: the core runs each value once per session)."""
        rows = self._db.execute("SELECT seq, app, name, stamp, value FROM broadcasts WHERE seq > ? AND scope = ? "
                                "ORDER BY seq", (self._last, self.scope)).fetchall()
        if rows and self._receive is not None:
            self._last = rows[-1][0]
            for _, app, name, stamp, value in rows:
                self._receive(Message(app, name, stamp, value))


class RedisChannel:
    """Every worker of every host, through Redis pub/sub and a hash of the newest values."""

    def __init__(self, url: str, namespace: str) -> None:
        try:
            import redis
        except ImportError:
            raise ValueError("broadcasts through Redis need the redis package: "
                             "pip install 'bokeh-flask[redis]'") from None
        self.url = url
        # a publish that cannot reach Redis falls back soon: the POST that sent it is waiting
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        # pub/sub channels span Redis' databases: the database number keeps deployments apart
        database = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.hash = f"bokeh-flask:broadcast:{namespace}:{database}:newest"
        self.channel = f"bokeh-flask:broadcast:{namespace}:{database}"
        self._script = self.client.register_script(_PUBLISH)
        self._listener: gevent.Greenlet[..., None] | None = None
        self._unreachable = False

    def start(self, receive: Receive) -> list[Message]:
        """The newest values now (the session a worker's first request builds gets them),
        then subscribe in a greenlet of its own, which reads them again once subscribed,
        so nothing sent in between is missed. A Redis that is down costs the first request
        at most the connect timeout; the listener says so and keeps trying."""
        try:
            newest = self.newest()
        except Exception:  # the redis client's errors: the listener logs the outage
            newest = []
        self._listener = gevent.spawn(self._listen, receive)
        return newest

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.kill(block=False)
            self._listener = None

    def publish(self, app: str, name: str, value: str) -> Message:
        published = self._script(keys=[self.hash, self.channel],
                                 args=[json.dumps([app, name]), secrets.token_hex(4), _body(app, name, value)])
        message = _parse(published)
        assert message is not None  # the script returns what it was given, stamped
        return message

    def newest(self) -> list[Message]:
        found = (_parse(value) for value in self.client.hgetall(self.hash).values())
        return [message for message in found if message is not None]

    def _listen(self, receive: Receive) -> None:
        import redis

        delay = REDIS_RETRY[0]
        while True:
            client: Any = redis.Redis.from_url(self.url, socket_connect_timeout=5, socket_keepalive=True)
            pubsub = client.pubsub()  # Any: redis-py types pubsub() in some releases only
            try:
                self._subscribe(pubsub)
                for message in self.newest():  # what was sent while this worker was not subscribed
                    receive(message)
                self._answers()
                delay = REDIS_RETRY[0]
                while True:
                    item = pubsub.get_message(timeout=REDIS_HEALTH_INTERVAL)
                    if item is None:
                        pubsub.ping()
                    elif item["type"] == "message":
                        arrived = _parse(item["data"])
                        if arrived is not None:
                            receive(arrived)
            except (redis.RedisError, OSError) as exc:
                self._down(exc)
            finally:
                pubsub.close()
            gevent.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY[1])

    def _subscribe(self, pubsub: Any) -> None:
        """Subscribe and wait for Redis to confirm, so reading the newest values after it
        leaves no gap."""
        pubsub.subscribe(self.channel)
        deadline = time.monotonic() + REDIS_HEALTH_INTERVAL
        while time.monotonic() < deadline:
            item = pubsub.get_message(timeout=1.0)
            if item is not None and item["type"] == "subscribe":
                return
        raise TimeoutError("Redis did not confirm the subscription")

    def _down(self, exc: BaseException) -> None:
        if not self._unreachable:
            self._unreachable = True
            log.warning("broadcasts from other hosts cannot be received: Redis cannot be reached (%s); "
                        "retrying, and catching up on the newest values once it answers", exc)

    def _answers(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.warning("broadcasts from other hosts are received again")


class Channels:
    """What a worker's core uses (:class:`...app.sessions.broadcasts.BroadcastChannel`):
    Redis when configured, the host channel always, and the host channel alone for a
    broadcast Redis cannot take."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        namespace = keyed_digest("broadcasts", namespace_for(settings.cookie_secret))[:16]
        self.redis = RedisChannel(settings.redis_url, namespace) if settings.redis_url else None
        self.host: HostChannel | None = None
        self._redis_failing = False

    def start(self, receive: Receive) -> list[Message]:
        self.host = HostChannel.for_settings(self.settings)
        newest = self.host.start(receive) if self.host is not None else []
        return newest + (self.redis.start(receive) if self.redis is not None else [])

    def stop(self) -> None:
        for channel in (self.host, self.redis):
            if channel is not None:
                channel.stop()

    def publish(self, app: str, name: str, value: str) -> Message:
        if self.redis is not None:
            try:
                message = self.redis.publish(app, name, value)
            except Exception as exc:  # the redis client's errors, whatever Redis did
                self._redis_down(app, name, exc)
            else:
                if self._redis_failing:
                    self._redis_failing = False
                    log.warning("broadcasts reach the other hosts again (Redis answers)")
                return message
        if self.host is not None:
            return self.host.publish(app, name, value)
        return Message(app, name, local_stamp(), value)

    def _redis_down(self, app: str, name: str, exc: Exception) -> None:
        if not self._redis_failing:
            self._redis_failing = True
            log.warning("broadcast %r to app %s reached this host's sessions only: the other hosts were "
                        "not reached, Redis cannot be reached (%s); said once until Redis answers again",
                        name, app, exc)
