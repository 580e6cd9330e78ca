"""Application contexts: one per served app, owning its sessions.

Sessions are created once per id even when a page request and a websocket (or two
websockets) ask for the same id at the same moment: later askers wait on the first
creation's result. A websocket may reach a worker that never saw the page; the token
then carries the request facts that rebuild the session here.
"""
from __future__ import annotations

import inspect
import logging
import sys
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator

import gevent
from bokeh.application import Application
from bokeh.application.application import ServerContext as BokehServerContext
from bokeh.application.application import SessionContext as BokehSessionContext
from bokeh.core.types import ID
from bokeh.document import Document
from gevent.event import AsyncResult

from ..apps import bokeh_compat, ids, panel_support
from ..apps.load_errors import AppLoadError
from ..auth.providers import request_user
from ..runtime import asyncio_loop
from ..runtime.asyncio_loop import resolve
from .broadcasts import AppBroadcasts
from .requests import RequestInfo, RequestProxy
from .session import ServerSession, SessionDestroyed
from .tokens import decode_token, short_id

if TYPE_CHECKING:
    from ..runtime.metrics import AppMetrics
    from .request_context import PageFactsKeeper

log = logging.getLogger(__name__)


class ServerContext(BokehServerContext):
    """What ``on_server_loaded`` and ``session_context.server_context`` see."""

    def __init__(self, application_context: ApplicationContext) -> None:
        self.application_context = application_context

    @property  # our ServerSession stands in for Bokeh's (what app code reads), not a subclass
    def sessions(self) -> list[ServerSession]:  # type: ignore[override]
        """This worker's live sessions of the app: each worker process holds its own, and
        no host-wide list exists (the README's "What is per worker, per host, shared")."""
        return list(self.application_context.sessions.values())


class SessionContext(BokehSessionContext):
    """``doc.session_context``: the session id, the request that made it, the lock."""

    def __init__(self, server_context: ServerContext, session_id: str, document: Document,
                 request: RequestProxy, token: str, payload: dict[str, Any], logout_url: str | None,
                 user: str | None = None) -> None:
        super().__init__(server_context, ID(session_id))
        self._document = document
        self._request = request
        self._token = token
        #: the token's payload with the page's facts (kept on the server, not in the token)
        self._payload = payload
        self._logout_url = logout_url
        self._user = user
        #: weak: the session holds this context, and a cycle would keep a discarded
        #: session (and its document) alive until a full garbage collection
        self._session_ref: weakref.ref[ServerSession] | None = None

    def attach(self, session: ServerSession) -> None:
        """Bind the session built for this context (it did not exist during the app hooks)."""
        self._session_ref = weakref.ref(session)

    @property
    def document(self) -> Document:
        """The session's document (abstract in Bokeh 3.10's ``SessionContext``)."""
        return self._document

    @property
    def destroyed(self) -> bool:
        """True once the session is discarded (a freed session was discarded first)."""
        if self._session_ref is None:
            return False
        session = self._session_ref()
        return session is None or session.destroyed

    @property
    def session(self) -> ServerSession | None:
        return None if self._session_ref is None else self._session_ref()

    @property
    def request(self) -> RequestProxy:
        return self._request

    @property
    def token_payload(self) -> dict[str, Any]:
        """What Bokeh's token would carry: the page's headers, cookies, arguments and
        ``process_request`` values, whether the token holds them or a reference to them."""
        return dict(self._payload)

    @property
    def logout_url(self) -> str | None:
        return self._logout_url

    @property
    def user(self) -> str | None:
        """The identity of the user who owns this session (None when auth is off)."""
        return self._user

    def with_locked_document(self, func: Callable[[Document], Any]) -> Awaitable[Any]:
        """Run ``func(doc)`` (plain or ``async def``) under the session's lock, when awaited.

        The lock is taken by a greenlet (:func:`asyncio_loop.to_greenlet`), so the loop
        runs on while this waits for it. During ``on_session_created`` there is no session
        and no lock yet: ``func`` runs at once, as in Bokeh."""
        async def run() -> Any:
            if self._session_ref is None:
                result = func(self._document)
                return await result if inspect.isawaitable(result) else result
            session = self._session_ref()
            if session is None:
                raise SessionDestroyed(self.id)
            return await asyncio_loop.to_greenlet(session.with_document_locked, func, self._document)
        return run()


@contextmanager
def same_sys_lists() -> Iterator[None]:
    """Keep ``sys.path`` and ``sys.argv`` the same list objects across a run of app code.

    Bokeh's code runner sets them back to copies it made before the run, so each session
    built left two fresh lists in their place: long-lived objects allocated among a burst
    of sessions' memory, which kept that memory from going back to the OS after the
    sessions expired. Copying what Bokeh restored into the original lists keeps its
    contents, and the lists other code may hold stay the live ones."""
    path, argv = sys.path, sys.argv
    try:
        yield
    finally:
        if sys.path is not path:
            path[:] = sys.path
            sys.path = path
        if sys.argv is not argv:
            argv[:] = sys.argv
            sys.argv = argv


@dataclass(frozen=True)
class ContextOptions:
    """What an app's sessions need to know of the server that serves them."""

    #: ``session_context.logout_url``: the prefixed logout page (None: no login)
    logout_url: str | None = None
    #: where BokehJS and extension files are served (Panel's assets point there)
    static_root: str = "/static/"
    #: ``--dev``: an app whose code fails shows where instead of what it built
    dev: bool = False
    #: where a token's reference to the page's facts is read back (None: tokens carry them)
    facts: PageFactsKeeper | None = None


DEFAULT_OPTIONS = ContextOptions()


class ApplicationContext:
    """One served app: its ``Application``, URL key and live sessions."""

    def __init__(self, key: str, application: Application, metrics: AppMetrics,
                 options: ContextOptions = DEFAULT_OPTIONS, load_error: AppLoadError | None = None) -> None:
        self.url = key
        self.application = application
        self.options = options
        self.server_context = ServerContext(self)
        #: this app's Prometheus instruments (recording nothing with metrics off)
        self.metrics = metrics
        #: Bokeh messages in from clients and out to them: plain counters (an increment
        #: each, metrics on or off) for the admin page's messages per second
        self.messages_in = 0
        self.messages_out = 0
        #: live sessions by :func:`session_key`
        self.sessions: dict[str, ServerSession] = {}
        self._pending: dict[str, AsyncResult[ServerSession]] = {}
        #: the newest broadcast values, and running their handlers in these sessions
        self.broadcasts = AppBroadcasts(key, self.sessions, metrics)
        #: why the app's code could not be loaded (``--dev`` serves its error page instead)
        self.load_error = load_error

    def get_session(self, session_id: str, user: str | None = None) -> ServerSession | None:
        """The live session ``user`` (None: auth off) has under ``session_id``."""
        return self.sessions.get(session_key(session_id, user))

    def create_session_if_needed(self, session_id: str, token: str, request: RequestInfo | None,
                                 payload: dict[str, Any] | None = None) -> ServerSession:
        """Get the live session with this id or build it by running the app code.

        ``payload`` is the token's payload with the page's facts, when the caller has them
        (the page request that minted the token); else they are read back from where the
        token's reference says (:mod:`.request_context`).

        A new session belongs to the request's authenticated user (see :mod:`app.auth.providers`),
        and with authentication on the id names a session within that user's own: another
        user naming the same id meets a session of their own, never this one.
        """
        key = session_key(session_id, request_user(request))
        session = self.sessions.get(key)
        if session is not None:
            return session
        pending = self._pending.get(key)
        if pending is not None:
            built = pending.get()  # the builder's session, or its exception raised here
            assert built is not None  # (gevent's stubs type get() as Optional)
            return built
        pending = self._pending[key] = AsyncResult()
        try:
            session = self._create_session(session_id, token, request, payload)
        except BaseException as exc:
            pending.set_exception(exc)
            raise
        finally:
            del self._pending[key]
        session.key = key
        self.sessions[key] = session
        # after joining the sessions, so a broadcast arriving meanwhile reaches it either way
        self.broadcasts.replay(session)
        self.metrics.session_created()
        pending.set(session)
        log.debug("session %s created for app %s", short_id(session_id), self.url)
        return session

    def _create_session(self, session_id: str, token: str, request: RequestInfo | None,
                        payload: dict[str, Any] | None) -> ServerSession:
        with ids.session_ids(session_id):
            return self._build_session(session_id, token, request, payload)

    def _build_session(self, session_id: str, token: str, request: RequestInfo | None,
                       payload: dict[str, Any] | None) -> ServerSession:
        if payload is None:
            payload = decode_token(token)[1]
            if self.options.facts is not None:
                payload = self.options.facts.expand(session_id, request_user(request), payload)
        doc = Document()
        context = SessionContext(self.server_context, session_id, doc,
                                 RequestProxy(request, payload), token, payload, self.options.logout_url,
                                 request_user(request))
        doc._session_context = weakref.ref(context)
        tasks = asyncio_loop.TaskOwner()
        with asyncio_loop.owned_by(tasks):
            self._run_session_hooks("on_session_created", context)
            started = time.perf_counter()
            try:
                with same_sys_lists():
                    self.application.initialize_document(doc)
            except Exception:
                # as bokeh serve: the error is logged and the session serves what was built
                log.exception("error running the code of app %s", self.url)
                self.metrics.error("app_code")
            self.metrics.document_built(time.perf_counter() - started)
            if self.options.dev:
                # --dev: the page shows where the app failed instead of what it built
                failed = next((h for h in self.application.handlers if h.failed), None)
                if failed is not None:
                    raise AppLoadError.from_handler(self.url, failed)
        panel_support.prepare_document(doc, self.options.static_root)
        session = ServerSession(session_id, doc, token, tasks)
        session.context = context
        context.attach(session)
        return session

    def update_sessions(self, update: Callable[[Document], Any]) -> int:
        """Bokeh 3.10's ``update_sessions`` for this app: ``update(doc)`` for each session
        live when it starts, each under its session's lock in a greenlet of its own (the
        sessions are updated concurrently, as Bokeh gathers them), ``async def`` ones
        awaited. Returns once every update has run: the count that completed. One that
        raises is logged with the app and session; the others still run."""

        def run(session: ServerSession) -> bool:
            try:
                session.with_document_locked(update, session.document)
            except SessionDestroyed:
                return False
            except Exception:
                log.exception("update_sessions: the update failed for session %s of app %s",
                              short_id(session.id), self.url)
                self.metrics.error("update")
                return False
            return True

        runs = [gevent.spawn(run, session) for session in list(self.sessions.values())]
        gevent.joinall(runs)
        return sum(1 for greenlet in runs if greenlet.value)

    def discard_session(self, session: ServerSession) -> None:
        """Destroy an unused session, then run its destroy hooks outside the lock."""
        if session.connection_count > 0:
            return
        try:
            with session.locked():
                if session.connection_count > 0:
                    log.warning("session %s came back to life; not discarding", session.id[:8])
                    return
                session.destroy()
        except SessionDestroyed:
            return
        self.sessions.pop(session.key, None)
        self.metrics.session_discarded("logout" if session.expiration_requested else "unused")
        log.debug("session %s discarded from app %s", short_id(session.id), self.url)
        context = session.context
        if context is None:
            return
        _run_document_destroyed(context)
        self._run_session_hooks("on_session_destroyed", context)

    def _run_session_hooks(self, name: str, context: SessionContext) -> None:
        """Every handler's session hook in order, each awaited, ``async def`` ones included
        (Bokeh never awaits those); a failing hook is logged and the others still run."""
        for handler in self.application.handlers:
            hook = bokeh_compat.session_hook(handler, name)
            if hook is None:
                continue
            try:
                # a Bokeh wrapper coroutine may hand back the hook's own coroutine
                resolve(resolve(hook(context)))
            except Exception:
                log.exception("%s failed for app %s", name, self.url)
                self.metrics.error("hook")

    def expired_sessions(self, lifetime_s: float) -> list[ServerSession]:
        """Sessions to discard now: unused past ``lifetime_s`` and nobody holds their lock."""
        return [s for s in list(self.sessions.values())
                if _unused_past(s, lifetime_s) and not s.expiration_blocked]

    def discard_when_free(self, lifetime_s: float) -> int:
        """Give each unused session whose lock is busy (a callback running, a coroutine
        holding it across its awaits) a greenlet that waits for the lock and discards it
        then; returns how many were started. Skipped instead, a session whose periodic
        callbacks hold the lock whenever the cleanup job looks (both are timers, and can
        stay in step) would never expire."""
        started = 0
        for session in list(self.sessions.values()):
            if session.expiration_blocked and not session.discard_pending and _unused_past(session, lifetime_s):
                session.discard_pending = True
                gevent.spawn(self._discard_when_free, session)
                started += 1
        return started

    def _discard_when_free(self, session: ServerSession) -> None:
        try:
            self.discard_session(session)
        finally:
            session.discard_pending = False

    def run_load_hook(self) -> None:
        self._run_server_hooks("on_server_loaded")

    def run_unload_hook(self) -> None:
        self._run_server_hooks("on_server_unloaded")

    def _run_server_hooks(self, name: str) -> None:
        """Every handler's server hook in order; an ``async def`` one is awaited."""
        for handler in self.application.handlers:
            try:
                resolve(getattr(handler, name)(self.server_context))
            except Exception:
                log.exception("%s failed for app %s", name, self.url)
                self.metrics.error("hook")


def session_key(session_id: str, user: str | None) -> str:
    """A session's key among its app's sessions: its id, prefixed with its owner's identity
    when authentication is on (the NUL cannot occur in an identity that came through a
    cookie or a token: it ends the prefix unambiguously)."""
    return session_id if user is None else f"{user}\0{session_id}"


def _unused_past(session: ServerSession, lifetime_s: float) -> bool:
    return session.connection_count == 0 and (
        session.expiration_requested or session.seconds_since_last_unsubscribe() > lifetime_s)


def _run_document_destroyed(context: SessionContext) -> None:
    """Bokeh's DocumentLifecycleHandler, minus its full ``gc.collect()`` per session; an
    ``async def`` callback is awaited."""
    callbacks = context._document.session_destroyed_callbacks
    context._document.session_destroyed_callbacks = set()
    for callback in callbacks:
        try:
            resolve(callback(context))
        except Exception:
            log.exception("on_session_destroyed callback %r failed", callback)
