"""ServerCore: everything one worker serves, without the web layer.

Owns the settings, the token service, the origin allowlist, the auth provider, one
ApplicationContext per app key, the live connections, and the periodic jobs: unused-session
cleanup, keep-alive pings, logouts from other workers (:mod:`..auth.logout_events`), the
optional stats and memory logs, and with ``--admin`` the stats file (:mod:`..runtime.worker_stats`).
Started lazily in each worker process (after gunicorn forks), so no greenlet or hub crosses
a fork.
"""
from __future__ import annotations

import atexit
import gc
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..apps import curdoc, ids, versions
from ..apps.load_errors import AppLoadError
from ..apps.sources import AppSources, build_applications
from ..auth import logout_events, pending_logouts
from ..auth.logins import namespace_for
from ..auth.providers import TOKEN_USER_KEY, AuthError, AuthProvider, provider_from, request_user
from ..auth.tornado_bridge import TornadoBridge
from ..config import state_dir
from ..config.origins import OriginAllowlist
from ..config.settings import Settings
from ..runtime import asyncio_loop, handover, memory, metrics, worker_stats
from ..runtime.periodic import PeriodicCallback
from . import request_context
from .broadcasts import BroadcastChannel, Broadcasts
from .cleanup import SessionCleanup
from .connection import ServerConnection, Transport
from .contexts import ApplicationContext, ContextOptions
from .errors import CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_SESSION_GONE, HTTPError, WebSocketClose
from .handshake import check_token_user, refuse_ended
from .requests import RequestInfo
from .session import PageSession
from .tokens import (
    TokenService,
    decode_token,
    resolve_session_request,
)
from .user_sessions import UserSessions

if TYPE_CHECKING:
    from bokeh.document import Document

log = logging.getLogger(__name__)

#: Seconds a client refused by a full worker is told to wait (``Retry-After``): about how
#: long the unused sessions of closed tabs take to go.
FULL_RETRY_AFTER = 15



class ServerCore:
    """The I/O-free heart of a bokeh-flask server (Bokeh's ``BokehTornado`` role)."""

    def __init__(self, settings: Settings, apps: AppSources = None,
                 auth: AuthProvider | str | os.PathLike[str] | None = None,
                 root_path: str | None = None, prefix: str = "",
                 broadcast_channel: BroadcastChannel | None = None) -> None:
        """``prefix`` is where the routes are mounted (a host app's ``url_prefix`` joined with
        the ``prefix`` setting): the login, logout and static URLs apps see derive from it.
        ``broadcast_channel`` carries broadcasts between workers and hosts (None: this
        process only)."""
        for notice in versions.untested_notices():  # flask run and host apps: once per process
            log.warning("%s", notice)
        if settings.use_config:
            # the file's other Bokeh settings (resources, minified ...) apply to Bokeh itself
            from bokeh.settings import settings as bokeh_settings

            bokeh_settings.load_config(settings.use_config)
        curdoc.install()
        ids.install()
        self.settings = settings
        #: Prometheus instruments; with metrics off every call does nothing
        self.metrics = metrics.for_settings(settings.metrics)
        self.tokens = TokenService.from_settings(settings)
        self.origins = OriginAllowlist.parse(settings.allow_websocket_origin, settings.port)
        #: Who may use the apps (Bokeh's auth-provider contract); NullAuth unless configured.
        self.auth_provider = provider_from(auth, settings)
        #: Prefix-joined login URL anonymous visitors go to, and the logout URL apps show.
        self.login_url = self.auth_provider.public_login_url(prefix)
        self.logout_url = self.auth_provider.public_logout_url(prefix)
        #: Where BokehJS and extension files are served.
        self.static_root = f"{prefix}/static/"
        #: Runs the provider's Tornado handlers and builds the handler get_user receives.
        self.tornado = TornadoBridge(settings.cookie_secret, settings.enable_xsrf_cookies)
        load_errors: dict[str, AppLoadError] | None = {} if settings.dev else None
        applications = build_applications(apps, root_path, load_errors)
        stats_directory = worker_stats.stats_dir(state_dir.prepare(settings.state_dir)) if settings.admin else ""
        if settings.admin:
            from ..apps.admin_app import with_admin  # Bokeh models: only when asked for

            applications = with_admin(applications, stats_directory)
        #: the page's request facts, kept on the server so tokens stay small
        self.facts = request_context.PageFactsKeeper(
            request_context.for_settings(settings),
            settings.session_token_expiration + request_context.KEEP_AFTER_EXPIRY)
        options = ContextOptions(logout_url=self.logout_url, static_root=self.static_root, dev=settings.dev,
                                 facts=self.facts)
        self.applications: dict[str, ApplicationContext] = {
            key: ApplicationContext(key, application, self.metrics.app(key), options,
                                    (load_errors or {}).get(key))
            for key, application in applications.items()
        }
        #: values for every session of an app on every worker and host (:meth:`broadcast`)
        self.broadcasts = Broadcasts(self.applications, broadcast_channel)
        self.connections: set[ServerConnection] = set()
        self._going_away: set[ServerConnection] = set()  # closed by a drain, not yet gone
        enabled = self.auth_provider.enabled
        #: logouts a shared store could not take yet, kept on the host (auth on only)
        self.pending_logouts = pending_logouts.for_settings(settings) if enabled else None
        #: logouts: here at once, elsewhere through the logout events (auth on only)
        self.users = UserSessions(self.applications, self.connections,
                                  self._open_logout_events() if enabled else None, self.pending_logouts)
        #: this worker's numbers for the admin page, shared on the host (``--admin`` only)
        self.stats_writer = worker_stats.StatsWriter(
            lambda: worker_stats.app_counts(self.applications, self.connections),
            stats_directory) if settings.admin else None
        for error in (load_errors or {}).values():
            # --dev: the server stays up and the app's page shows the error until a good save
            log.error("%s", error.block())
        #: tells a ``--dev`` page that this worker replaced the one that served it
        self.boot_id = secrets.token_hex(8) if settings.dev else ""
        #: this worker's key while websockets may be handed to it by the other workers of
        #: its host (:meth:`accept_handovers`); None: never, or no longer
        self.worker_key: str | None = None
        #: the worker is shutting down: /readyz says so, so a balancer stops sending it work
        self.draining = False
        #: every app's ``on_server_loaded`` has run in this process
        self.loaded = False
        self._started_pid: int | None = None
        self._jobs: list[PeriodicCallback] = []
        #: the unused-session cleanup job and what it hands back to the OS
        self.cleanup = SessionCleanup(self.applications, settings.unused_session_lifetime)

    # -- lifecycle ----------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start periodic jobs and run ``on_server_loaded`` once per process."""
        if self._started_pid == os.getpid():
            return
        self._started_pid = os.getpid()
        memory.tune_collector()
        asyncio_loop.get_loop()
        atexit.register(self.stop)
        if self.stats_writer is not None:
            self.stats_writer.start()
        jobs = [(self.cleanup.run_pass, self.settings.check_unused_sessions),
                (self.send_keep_alive_pings, self.settings.keep_alive),
                (self._log_stats, self.settings.stats_log_frequency),
                (self._log_memory, self.settings.mem_log_frequency)]
        if self.metrics.enabled:
            jobs += [(self.metrics.flush, int(metrics.FLUSH_INTERVAL * 1000)),
                     (self.metrics.update_process, int(metrics.PROCESS_UPDATE_INTERVAL * 1000))]
        self._jobs = [PeriodicCallback(job, interval_ms / 1000.0) for job, interval_ms in jobs if interval_ms > 0]
        if self.users.events is not None:
            # a first poll now marks where this process starts reading: before its first
            # session, so no logout after that is missed
            self.users.apply_events()
            self._jobs.append(PeriodicCallback(self.users.apply_events, logout_events.POLL_INTERVAL))
        for job in self._jobs:
            job.start()
        self.broadcasts.start()
        self.metrics.update_process()  # this worker shows in a scrape from the start
        self.metrics.capacity(self.settings.max_sessions)
        for context in self.applications.values():
            context.run_load_hook()
        self.loaded = True

    def not_ready(self) -> str | None:
        """Why this worker should get no traffic yet (``/readyz``'s 503), or None: ready."""
        if self.draining:
            return "draining: the worker is shutting down"
        failed = [key for key, context in self.applications.items() if context.load_error is not None]
        if failed:
            return f"app {', '.join(failed)} failed to load (see the server log)"
        if not self.loaded:
            return "starting: on_server_loaded hooks are running"
        return self.full() or self.auth_provider.unavailable() or self.users.unavailable()

    def accept_handovers(self, key: str) -> None:
        """This gunicorn worker now listens, as ``key``, for websockets its siblings hand
        over: the tokens of its pages name it as their session's owner."""
        if not self.draining:
            self.worker_key = key

    def begin_drain(self) -> None:
        """This worker is exiting: ``/readyz`` answers 503 and no session is handed to it."""
        self.draining = True
        self.worker_key = None

    def close_websockets(self, limit: int | None = None) -> int:
        """Close websockets with 1001 (going away), so BokehJS reconnects at once, to a
        worker that is still accepting: all of them, or at most ``limit`` (a drain spreads
        its closes). Returns the count closed."""
        connections = [c for c in self.connections if c not in self._going_away][:limit]
        self._going_away.update(connections)
        for connection in connections:
            connection.transport.close(CLOSE_GOING_AWAY, "the server is restarting")
        return len(connections)

    def open_websockets(self) -> int:
        """Websockets a drain has yet to close."""
        return len(self.connections) - len(self._going_away)

    def stop(self) -> None:
        """Stop jobs and run ``on_server_unloaded`` (orderly worker exit)."""
        self.draining = True
        if self.stats_writer is not None:
            self.stats_writer.stop()
        if self._started_pid != os.getpid():
            return
        for job in self._jobs:
            job.stop()
        self._jobs = []
        self.broadcasts.stop()
        for context in self.applications.values():
            context.run_unload_hook()
            context.metrics.session_discarded("shutdown", len(context.sessions))
        self.metrics.flush()
        asyncio_loop.stop()
        self._started_pid = None

    # -- sessions -----------------------------------------------------------------------

    def application_context(self, key: str) -> ApplicationContext:
        try:
            return self.applications[key]
        except KeyError:
            raise HTTPError(404, "Not Found") from None

    def update_sessions(self, app_path: str, update: Callable[[Document], Any]) -> int:
        """Bokeh 3.10's ``update_sessions``, per process as Bokeh's is: ``update(doc)`` for
        every live session of the app at ``app_path`` (``"/sliders"``), each under its
        session's lock, so the change reaches each session's connected clients. Callable
        from Flask request code and from background greenlets; returns once every update
        has run, the count that completed (see :meth:`ApplicationContext.update_sessions`)."""
        context = self.applications.get(app_path)
        if context is None:
            raise ValueError(f"Application {app_path} does not exist on this server "
                             f"(its apps: {', '.join(self.applications)})")
        return context.update_sessions(update)

    def broadcast(self, app_path: str, name: str, value: Any) -> int:
        """Run the handler registered as ``name`` for the app at ``app_path``
        (:func:`.broadcasts.on_broadcast`) as ``handler(doc, value)`` for every session of the
        app on every worker and host (see :mod:`.broadcasts`); ``value`` travels as JSON.
        Returns once this worker's sessions have run it: the count that did."""
        self.ensure_started()
        return self.broadcasts.publish(app_path, name, value)

    def session_for_request(self, context: ApplicationContext, request: RequestInfo) -> PageSession:
        """Bokeh's SessionHandler.get_session: resolve id and token, get or create the session.

        The page gets a token of its own even when it joins a live session. With auth on,
        the minted token names the request's user, so a websocket can later be matched to
        the user who loaded the page.
        """
        if context.load_error is not None:
            raise context.load_error
        extra = self._process_request(context, request)
        user = request_user(request)
        carried: dict[str, Any] = {}
        if user is not None:
            carried[TOKEN_USER_KEY] = user
        if self.worker_key is not None:
            # the websocket of this page goes to this worker, whichever one accepts it
            carried[handover.OWNER_KEY] = self.worker_key
        facts: dict[str, Any] = {}

        def keep(session_id: str, payload: dict[str, Any]) -> str:
            facts.update(payload)
            return self.facts.keep(session_id, user, payload)

        session_id, token = resolve_session_request(request, self.tokens, self.settings, extra, carried, keep)
        if user is not None:
            check_token_user(decode_token(token)[1], user)
            refuse_ended(context, session_id, user)
        if context.get_session(session_id, user) is None:
            self._refuse_when_full(context)
        # a session this page makes is built from the facts at hand, not read back from the store
        built_from = {**facts, **carried} if facts else None
        return PageSession(context.create_session_if_needed(session_id, token, request, built_from), token)

    def live_sessions(self) -> int:
        return sum(len(context.sessions) for context in self.applications.values())

    def full(self) -> str | None:
        """Why this worker takes no new session (``--max-sessions`` reached), or None."""
        cap = self.settings.max_sessions
        live = self.live_sessions()
        if cap and live >= cap:
            return f"full: {live} live sessions (--max-sessions {cap})"
        return None

    def _refuse_when_full(self, context: ApplicationContext) -> None:
        """A page that would make a new session on a full worker: 503 with ``Retry-After``,
        so a load balancer tries another; the worker's own sessions keep working."""
        reason = self.full()
        if reason is not None:
            self.metrics.page_refused(context.url, "capacity")
            log.warning("Refusing a new session of app %s: this worker is %s", context.url, reason)
            raise HTTPError(503, f"Service Unavailable: this server is {reason}; try again shortly",
                            {"Retry-After": str(FULL_RETRY_AFTER)})

    @staticmethod
    def _process_request(context: ApplicationContext, request: RequestInfo) -> Mapping[str, Any]:
        """Each handler's ``process_request`` in order, merged; an ``async def`` one is
        awaited (Bokeh 3.10's server does; ``Application.process_request`` cannot)."""
        extra: dict[str, Any] = {}
        for handler in context.application.handlers:
            try:
                # Bokeh types the argument as Tornado's request (cookies are Morsels there); ours
                # gives the cookies as plain strings
                result = asyncio_loop.resolve(handler.process_request(request))  # type: ignore[arg-type]
            except Exception:
                log.exception("process_request failed for app %s", context.url)
                context.metrics.error("process_request")
                raise HTTPError(500, "the application's process_request failed") from None
            if not isinstance(result, Mapping):
                log.error("process_request of app %s returned %r, not a dict", context.url, type(result))
                raise HTTPError(500, "the application's process_request did not return a dict")
            extra.update(result)
        return extra

    def open_connection(self, context: ApplicationContext, session_id: str, token: str,
                        request: RequestInfo, transport: Transport, *, create: bool = True,
                        payload: dict[str, Any] | None = None) -> ServerConnection:
        """Get (or, with ``create``, build) the token's session here, subscribe a connection,
        send ACK first. A session that ended since the handshake closes the connection
        when it may not be built again (an expired token). ``payload``: the token's payload
        with its page facts, when the handshake has read them already."""
        session = context.get_session(session_id, request_user(request))
        if session is None:
            if not create:
                raise WebSocketClose(CLOSE_SESSION_GONE, "the session has ended and the token has expired")
            try:
                if context.load_error is not None:
                    raise context.load_error
                session = context.create_session_if_needed(session_id, token, request, payload)
            except AppLoadError as exc:  # --dev: the page shows it; the log has it already
                raise WebSocketClose(CLOSE_INTERNAL_ERROR, "the app failed to load") from exc
        if session.expiration_requested:  # its user logged out since the handshake
            raise WebSocketClose(CLOSE_SESSION_GONE, "the user logged out")
        connection = ServerConnection(context, session, transport)
        session.subscribe(connection)
        self.connections.add(connection)
        context.metrics.connection_opened()
        connection.send_ack()
        return connection

    def close_connection(self, connection: ServerConnection) -> None:
        connection.detach_session()
        if connection in self.connections:
            self.connections.remove(connection)
            self._going_away.discard(connection)
            connection.application_context.metrics.connection_closed()

    # -- users --------------------------------------------------------------------------

    def _open_logout_events(self) -> logout_events.LogoutEvents:
        """The logout events channel; one that does not answer now (a worker booting during
        an outage) is used all the same, with one warning (:meth:`UserSessions.apply_events`
        warns while it stays down)."""
        url = logout_events.events_url(self.settings)
        try:
            return logout_events.open_events(url, namespace_for(self.settings.cookie_secret), reachable=False)
        except ValueError as exc:
            flag = "--redis-url" if self.settings.redis_url else "--login-store"
            raise AuthError(f"{flag}: {exc}") from None

    def end_user_sessions(self, user: str) -> int:
        """Logout: end ``user``'s sessions in every worker (see :class:`UserSessions`)."""
        return self.users.end(user)

    # -- periodic jobs ------------------------------------------------------------------

    def send_keep_alive_pings(self) -> None:
        """Ping every open websocket (the keep-alive job)."""
        for connection in list(self.connections):
            try:
                connection.send_ping()
            except Exception:
                log.debug("ping failed", exc_info=True)

    def stats(self) -> dict[str, int]:
        """This worker's counts (the log lines built from them start with its pid)."""
        return {
            "sessions": sum(len(c.sessions) for c in self.applications.values()),
            "connections": len(self.connections),
            "tasks": asyncio_loop.pending_tasks(),
        }

    def _log_stats(self) -> None:
        if log.isEnabledFor(logging.DEBUG):
            stats = self.stats()
            log.debug("[pid %d] %d connections, %d sessions, %d asyncio tasks", os.getpid(),
                      stats["connections"], stats["sessions"], stats["tasks"])

    def _log_memory(self) -> None:
        """Bokeh's memory log line, plus the live greenlets (frozen ones too: a leak check)."""
        from greenlet import greenlet

        stats = self.stats()
        with memory.thawed():
            gc.collect()
            greenlets = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet))
        log.info("[pid %d] memory: %.1f MiB RSS, %d sessions, %d connections, %d greenlets",
                 os.getpid(), memory.rss_mib(), stats["sessions"], stats["connections"], greenlets)
