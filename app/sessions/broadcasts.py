"""Broadcasts: a value for every session of an app, on every worker and host (core side).

A Python function cannot travel between processes, so a broadcast is a *name* and a
JSON value: each worker runs the handler registered under that app and name
(:func:`on_broadcast`) as ``handler(doc, value)`` for each of its own sessions, under the
session's lock in a greenlet of its own, as :meth:`.contexts.ApplicationContext.update_sessions`
does. The channel that carries the bytes between workers and hosts (Redis pub/sub, or the
host's store) is the transport's (:mod:`bokeh_flask.blueprints.broadcast`); this module
decides who runs what, once.

A broadcast is state, not an event: each value carries a stamp (the time it was sent, then
a nonce; they sort as strings), and the newest value of each app and name is kept by
every worker and by the channel. A session runs a handler only for a stamp newer than the
last it ran for that name, so a value that arrives twice (published here, then back from
the channel) runs once, and a session built later (a new tab, or one rebuilt from its token
after a worker restart or on another host) gets the newest value of each name while it is
built, before its page or first pull. So no session misses the newest value, whatever
worker it lives through; a value superseded before it reached a worker may be skipped there.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import gevent

from .session import ServerSession, SessionDestroyed
from .tokens import short_id

if TYPE_CHECKING:
    from bokeh.document import Document

    from ..runtime.metrics import AppMetrics
    from .contexts import ApplicationContext

log = logging.getLogger(__name__)

#: ``handler(doc, value)``: runs under the session's lock; ``async def`` ones are awaited.
Handler = Callable[["Document", Any], Any]
#: The largest JSON value a broadcast carries: every worker holds the newest of each name,
#: and Redis drops a subscriber whose output buffer passes 8 MiB for a minute.
MAX_VALUE_BYTES = 4 * 1024 * 1024

_handlers: dict[tuple[str, str], Handler] = {}


class BroadcastError(ValueError):
    """A broadcast that cannot be sent (no such app here, a value that is not JSON or too large)."""


@dataclass(frozen=True)
class Message:
    """One broadcast as the channels carry it: ``value`` is the JSON text, decoded once per
    session so no handler sees another session's copy."""

    app: str
    name: str
    stamp: str
    value: str


class BroadcastChannel(Protocol):
    """What carries broadcasts between the workers and hosts (the transport's)."""

    def start(self, receive: Callable[[Message], None]) -> list[Message]:
        """Listen in this process (``receive`` gets each message another worker sends);
        returns the newest message of each app and name the channel holds."""

    def publish(self, app: str, name: str, value: str) -> Message:
        """Send to every worker and host; the message, stamped. Never raises for a channel
        that is down: it reaches what it can (this host at least) and says so in the log."""

    def stop(self) -> None:
        """Stop listening (the worker exits)."""


def on_broadcast(app_path: str, name: str = "update") -> Callable[[Handler], Handler]:
    """Register ``handler(doc, value)`` for broadcasts named ``name`` to the app at
    ``app_path`` (``"/dashboard"``), in this process: call it where every worker runs it
    (a host app's module, an app's ``server_lifecycle.py`` or its code). Registering again
    replaces the handler (an app script registers once per session it builds)."""
    if not app_path.startswith("/"):
        raise BroadcastError(f"app paths start with '/', as in '/dashboard', got {app_path!r}")

    def register(handler: Handler) -> Handler:
        _handlers[(app_path, name)] = handler
        return handler
    return register


def encode_value(value: Any) -> str:
    """A broadcast value as the JSON it travels as; BroadcastError saying why not."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise BroadcastError(f"a broadcast value travels as JSON, and this one cannot: {exc}") from None
    if len(text) > MAX_VALUE_BYTES:
        raise BroadcastError(f"a broadcast value is {len(text)} bytes as JSON, over {MAX_VALUE_BYTES}: "
                             "broadcast a reference the handler can read the data with instead")
    return text


_last_micros = 0


def local_stamp() -> str:
    """A stamp from this host's clock (microseconds, strictly increasing in this process)."""
    global _last_micros
    _last_micros = max(time.time_ns() // 1000, _last_micros + 1)
    return f"{_last_micros:017d}-{secrets.token_hex(4)}"


class AppBroadcasts:
    """One app's broadcasts in this worker: the newest value of each name, and running the
    handlers for its sessions."""

    def __init__(self, url: str, sessions: Mapping[str, ServerSession], metrics: AppMetrics) -> None:
        self.url = url
        self.sessions = sessions
        self.metrics = metrics
        #: the newest message of each name (what a session built later gets)
        self.latest: dict[str, Message] = {}
        self._unhandled: set[str] = set()

    def receive(self, message: Message) -> list[gevent.Greenlet[..., bool]]:
        """Keep ``message`` if it is the newest of its name, and run it for every live
        session, each in a greenlet of its own (returned: not waited for)."""
        self.keep(message)
        return [gevent.spawn(self.apply, session, message) for session in list(self.sessions.values())]

    def replay(self, session: ServerSession) -> None:
        """A session just built: the newest value of each name, here and now."""
        for message in list(self.latest.values()):
            self.apply(session, message)

    def apply(self, session: ServerSession, message: Message) -> bool:
        """Run the handler for ``session`` unless it ran for this or a newer value of the
        name; True when it ran and returned. One that raises is logged with app and session."""
        if session.broadcast_stamps.get(message.name, "") >= message.stamp:
            return False
        handler = _handlers.get((self.url, message.name))
        if handler is None:
            self._warn_unhandled(message.name)
            return False
        session.broadcast_stamps[message.name] = message.stamp
        try:
            session.with_document_locked(handler, session.document, json.loads(message.value))
        except SessionDestroyed:
            return False
        except Exception:
            log.exception("broadcast %r: the handler failed for session %s of app %s",
                          message.name, short_id(session.id), self.url)
            self.metrics.error("broadcast")
            return False
        return True

    def keep(self, message: Message) -> None:
        """Keep ``message`` as its name's newest, unless a newer one is kept."""
        latest = self.latest.get(message.name)
        if latest is None or latest.stamp < message.stamp:
            self.latest[message.name] = message

    def _warn_unhandled(self, name: str) -> None:
        if name not in self._unhandled:
            self._unhandled.add(name)
            log.warning("broadcast %r to app %s: no handler is registered for it in this worker "
                        "(bokeh_flask.on_broadcast(%r, %r))", name, self.url, self.url, name)


class Broadcasts:
    """One core's broadcasts: sending through the channel, and handing what arrives to the
    apps (those this worker does not serve are ignored)."""

    def __init__(self, applications: Mapping[str, ApplicationContext], channel: BroadcastChannel | None) -> None:
        self.applications = applications
        self.channel = channel
        self._started = False

    def start(self) -> None:
        """Listen in this process; the channel's newest values become each app's."""
        if self.channel is None or self._started:
            return
        self._started = True
        for message in self.channel.start(self.receive):
            app = self._app(message.app)
            if app is not None:
                app.keep(message)

    def stop(self) -> None:
        if self.channel is not None and self._started:
            self._started = False
            self.channel.stop()

    def receive(self, message: Message) -> None:
        app = self._app(message.app)
        if app is not None:
            app.receive(message)

    def _app(self, app_path: str) -> AppBroadcasts | None:
        context = self.applications.get(app_path)
        return context.broadcasts if context is not None else None

    def publish(self, app_path: str, name: str, value: Any) -> int:
        """Send ``value`` to every session of the app on every worker and host; returns once
        this worker's sessions have run the handler, with the count that did."""
        app = self._app(app_path)
        if app is None:
            raise BroadcastError(f"Application {app_path} does not exist on this server "
                                 f"(its apps: {', '.join(self.applications)})")
        text = encode_value(value)
        message = (self.channel.publish(app_path, name, text) if self.channel is not None
                   else Message(app_path, name, local_stamp(), text))
        runs = app.receive(message)
        gevent.joinall(runs)
        return sum(1 for run in runs if run.value)
