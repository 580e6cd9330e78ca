"""ServerSession: one Document, its lock, its connections and its callbacks.

The session is the Document's dispatch receiver: every syncable change made while the
lock is held becomes one PATCH-DOC, serialised once and written to every subscribed
connection except the one whose patch caused it (Bokeh serialises per connection, which
sends new models' definitions to only the first connection; we do not).

Nothing here knows about sockets: connections are :class:`app.sessions.connection.ServerConnection`
objects whose transport writes frames.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import gevent
from bokeh.core.property.wrappers import PropertyValueContainer
from bokeh.core.types import ID
from bokeh.document import Document
from bokeh.document.events import DocumentPatchedEvent, SessionCallbackAdded, SessionCallbackRemoved
from bokeh.document.locking import UnlockedDocumentProxy
from bokeh.events import ConnectionLost
from bokeh.io.doc import patch_curdoc
from bokeh.model import Model
from bokeh.server.callbacks import SessionCallback
from gevent.lock import Semaphore

from ..apps import bokeh_compat, curdoc
from ..runtime.asyncio_loop import TaskOwner, owned_by, resolve
from .callbacks import CallbackGroup

if TYPE_CHECKING:
    from bokeh.protocol.message import Message

    from .connection import ServerConnection

log = logging.getLogger(__name__)


class SessionDestroyed(Exception):
    """The session was discarded while an operation waited for it."""


class ServerSession:
    """A live Bokeh session: ``document`` plus everything needed to serve it."""

    def __init__(self, session_id: str, document: Document, token: str,
                 tasks: TaskOwner | None = None) -> None:
        self.id = session_id
        #: its key in the app's registry (the id; with auth, within its owner's ids)
        self.key = session_id
        self.document = document
        self.token = token
        #: the SessionContext handed to app hooks (set by the ApplicationContext)
        self.context: Any = None
        self._lock = Semaphore(1)
        self._connections: set[ServerConnection] = set()
        self._expiration_blocked = 0
        self._expiration_requested = False
        #: a greenlet waits for the lock to discard this session (see discard_when_free)
        self.discard_pending = False
        self._destroyed = False
        self._last_unsubscribe = time.monotonic()
        #: the asyncio tasks and timers this session's code started (cancelled on destroy)
        self.tasks = tasks if tasks is not None else TaskOwner()
        #: the stamp of the last broadcast of each name run here (:mod:`.broadcasts`)
        self.broadcast_stamps: dict[str, str] = {}
        self._callbacks = CallbackGroup(self._run_callback)
        document.callbacks.on_change_dispatch_to(self)
        for callback in document.session_callbacks:
            self._callbacks.add(callback)

    # -- state ---------------------------------------------------------------------------

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def expiration_blocked(self) -> bool:
        return self._expiration_blocked > 0

    @property
    def expiration_requested(self) -> bool:
        return self._expiration_requested

    def request_expiration(self) -> None:
        """Ask the cleanup job to discard this session at its next pass."""
        self._expiration_requested = True

    def seconds_since_last_unsubscribe(self) -> float:
        return time.monotonic() - self._last_unsubscribe

    def subscribe(self, connection: ServerConnection) -> None:
        self._connections.add(connection)

    def unsubscribe(self, connection: ServerConnection) -> None:
        self._connections.discard(connection)
        self._last_unsubscribe = time.monotonic()

    def notify_connection_lost(self) -> None:
        """Tell the document a websocket dropped: Bokeh's ``ConnectionLost`` event, run under
        the lock with ``curdoc()`` set, as Bokeh 3.10 does (earlier releases run it unlocked,
        where a callback that changes the document fails). A greenlet of its own, so closing
        a socket never waits for the app; none at all when no callback listens."""
        if self._destroyed or not self.document.callbacks.event_callbacks_for_event_name(
                ConnectionLost.event_name):
            return
        gevent.spawn(self._trigger_connection_lost)

    def _trigger_connection_lost(self) -> None:
        try:
            self.with_document_locked(self.document.callbacks.trigger_event, ConnectionLost())
        except SessionDestroyed:
            pass
        except Exception:
            log.exception("a connection_lost callback of session %s failed", self.id[:8])

    # -- the lock ------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[Document]:
        """Hold the document lock; the session cannot expire meanwhile."""
        self._expiration_blocked += 1
        try:
            with self._lock, curdoc.balanced(), owned_by(self.tasks):
                if self._destroyed:
                    raise SessionDestroyed(self.id)
                yield self.document
        finally:
            self._expiration_blocked -= 1

    def with_document_locked(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` with the lock held and ``curdoc()`` set to this document."""
        with self.locked() as doc, patch_curdoc(doc):
            return resolve(func(*args))

    # -- protocol requests (called by connections) ----------------------------------------

    def pull(self, connection: ServerConnection, reqid: str) -> None:
        with self.locked() as doc:
            reply = bokeh_compat.pull_doc_reply(ID(reqid), doc)
            drop_unused_defaults(doc)
        connection.send_message(reply)

    def push(self, connection: ServerConnection, message: Message[Any]) -> None:
        with self.locked() as doc:
            bokeh_compat.push_to_document(message, doc)
        connection.send_message(connection.ok(message))

    def patch(self, connection: ServerConnection, message: Message[Any]) -> None:
        self._let_next_ticks_start()
        with self.locked() as doc:
            # changes the patch causes carry the connection as their setter: not echoed to it
            bokeh_compat.apply_patch(message, doc, setter=connection)
        connection.send_message(connection.ok(message))

    def _let_next_ticks_start(self) -> None:
        """Before a client's patch is applied, let the next-tick callbacks scheduled so far
        start, and the coroutines they handed to the asyncio loop take their first step.
        Under ``bokeh serve`` Tornado reads a connection's next message on a later turn of
        its loop, after those callbacks, and Panel relies on that: a Tabulator handles its
        ``table-edit`` event in a next-tick coroutine, which must record the edit before
        the data patch the browser sends right behind it is applied, or ``on_edit`` never
        runs. Costs nothing while no next-tick callback waits."""
        if self._callbacks.unstarted_next_ticks():
            gevent.sleep(0)  # spawned before us, they start first
            resolve(_loop_turn())

    # -- Document dispatch hooks ----------------------------------------------------------

    def _document_patched(self, event: DocumentPatchedEvent) -> None:
        if not self._lock.locked():
            raise RuntimeError(
                "a Bokeh document was changed without holding its lock; from another "
                "thread use doc.add_next_tick_callback(...)"
            )
        if not self._connections:
            return
        frames = bokeh_compat.message_frames(bokeh_compat.patch_doc([event]))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("PATCH-DOC out to %d connections of session %s", len(self._connections), self.id[:8])
        setter: object = event.setter  # Bokeh types it as its own sessions; ours sets its connection
        for connection in list(self._connections):
            if connection is not setter:
                connection.write_frames(frames, "PATCH-DOC")

    def _session_callback_added(self, event: SessionCallbackAdded) -> None:
        self._callbacks.add(event.callback)

    def _session_callback_removed(self, event: SessionCallbackRemoved) -> None:
        self._callbacks.remove(event.callback)

    def _run_callback(self, callback: SessionCallback) -> None:
        """Run a session callback; an ``async def`` one runs on the asyncio loop with
        ``curdoc()`` set for its whole run, holding the lock across its awaits unless it
        is marked ``@without_document_lock`` (then ``curdoc()`` is Bokeh's unlocked proxy)."""
        if self._destroyed:
            return
        func = callback.callback
        try:
            if getattr(func, "nolock", False):
                with curdoc.balanced(), owned_by(self.tasks), patch_curdoc(UnlockedDocumentProxy(self.document)):
                    resolve(func())
                return
            with self.locked() as doc, patch_curdoc(doc):
                resolve(func())
        except (SessionDestroyed, asyncio.CancelledError):
            pass

    # -- teardown -------------------------------------------------------------------------

    def destroy(self) -> None:
        """Stop callbacks and release the document; idempotent.

        ``Document.destroy`` ends with a full ``gc.collect()``, which with thousands of
        live models stalls every user of the worker for a noticeable time per session.
        Instead we break the document's reference cycles (see :func:`_destroy_document`),
        so reference counting frees it as soon as the last holder lets go.
        """
        if self._destroyed:
            return
        self._destroyed = True
        self._callbacks.remove_all()
        self.tasks.cancel_all()
        self._connections.clear()
        _destroy_document(self.document, self)


async def _loop_turn() -> None:
    """Done in its first step, which the loop runs after the steps scheduled before it."""


def drop_unused_defaults(doc: Document) -> int:
    """Forget the empty list, dict and set defaults no one but their model holds; returns
    how many were dropped. Run after a PULL, when a session settles into being held.

    Bokeh makes every model's mutable defaults (``tags``, ``styles``, ``js_event_callbacks``
    and the like, ten or more per model) when the model is made, and again whenever the
    document is serialized, and keeps them: they are half of an idle trivial session's
    document (39 -> 18 KiB traced) and three quarters of a sliders one (254 -> 66 KiB). An
    empty default that is not shared is indistinguishable from the one Bokeh makes on the
    next read, so it is dropped: serialization leaves unmodified defaults out anyway, and a
    default changed in place has moved to the model's set values, which are kept. A default
    other code holds (its reference count says so) is kept, so changing it in place still
    reaches the model. The price is paid by a later PULL of the same session (a reconnect),
    which makes them again: a few milliseconds for sliders.
    """
    dropped = 0
    for model in doc.models:
        values = bokeh_compat.default_values(model)
        for name in [name for name, value in values.items()
                     if isinstance(value, PropertyValueContainer) and not value]:
            if _references(values, name) == _UNSHARED_REFERENCES:
                del values[name]
                dropped += 1
    return dropped


def _references(values: dict[str, Any], name: str) -> int:
    """The reference count of ``values[name]`` as seen from here (the dict's plus ours)."""
    return sys.getrefcount(values[name])


#: What :func:`_references` reports for a value only its dict holds (measured, not assumed:
#: interpreters differ in the references a call adds).
_UNSHARED_REFERENCES = _references({"probe": []}, "probe")


def _destroy_document(doc: Document, receiver: Any) -> None:
    """Bokeh's ``Document.destroy`` minus its ``gc.collect()``, plus the cycle breaking that
    makes the collect unnecessary.

    A Bokeh document is a web of reference cycles: each model points at its document, and
    each list, dict or set property value (defaults included) points back at its owner
    models. Left intact, only a full collection frees them (~220 objects per trivial
    session), which an idle worker never runs. Containers are cleared rather than deleted,
    so a greenlet still holding the document or a model (a ``nolock`` callback) reads empty
    values instead of raising ``AttributeError``. The callback side is in
    :mod:`app.sessions.callbacks` (``_release``) and the session context's link is weak.
    """
    doc.callbacks.remove_on_change(receiver)
    models = [*doc.models, *bokeh_compat.config_models(doc)]
    doc._roots = []  # Bokeh deletes it; empty, a late ``doc.roots`` is [] instead of an error
    for name in ("_theme", "_template"):
        if hasattr(doc, name):
            delattr(doc, name)
    doc._session_context = None
    _clear_callback_manager(doc)
    doc.models.destroy()
    for model in models:
        _clear_model(model)
    _drop_app_modules(doc)


def _clear_callback_manager(doc: Document) -> None:
    """Empty the document's callback registries, except ``session_destroyed_callbacks``:
    the destroy hooks run after this and consume them."""
    manager = doc.callbacks
    for name in ("_change_callbacks", "_event_callbacks", "_js_event_callbacks",
                 "_message_callbacks", "_session_callbacks", "_subscribed_models", "_held_events"):
        getattr(manager, name).clear()


def _clear_model(model: Model) -> None:
    """``Model.destroy`` (document links, set property values) plus the default and themed
    values and the Python callbacks it leaves, which hold cycles back to the model."""
    model.destroy()
    for name in (*bokeh_compat.DEFAULT_VALUE_CACHES, "_callbacks", "_event_callbacks"):
        getattr(model, name).clear()


def _drop_app_modules(doc: Document) -> None:
    """Remove the modules the app code created for this document, as
    ``DocumentModuleManager.destroy`` does, minus its ``gc.get_referrers`` leak check:
    that scans the whole heap, tens of milliseconds per session with many sessions live."""
    manager = getattr(doc, "modules", None)
    if manager is None:
        return
    modules = getattr(manager, "_modules", None)
    if modules is None:
        manager.destroy()
        return
    for module in modules:
        sys.modules.pop(module.__name__, None)
        module.__dict__.clear()
    manager._modules = []


@dataclass(frozen=True)
class PageSession:
    """A session as one page request got it: the session, and the token minted for this
    page (each page load gets its own, also when it joins a live session)."""

    session: ServerSession
    token: str

    @property
    def document(self) -> Document:
        return self.session.document

    @property
    def id(self) -> str:
        return self.session.id
