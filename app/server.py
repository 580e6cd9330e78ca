"""ServerCore: everything one worker serves, without the web layer.

Owns the settings, the token service, the origin allowlist, one ApplicationContext per app
key, the live connections, and two periodic greenlets: unused-session cleanup and
keep-alive pings. Started lazily in each worker process (after gunicorn forks), so no
greenlet or hub crosses a fork.
"""
from __future__ import annotations

import atexit
import logging
import os
from typing import Any, Mapping

import gevent

from . import curdoc
from .connection import ServerConnection, Transport
from .contexts import ApplicationContext
from .errors import HTTPError
from .origins import OriginAllowlist
from .requests import RequestInfo
from .session import ServerSession
from .settings import Settings
from .sources import AppSource, build_applications
from .tokens import TokenService, resolve_session_request

log = logging.getLogger(__name__)


class ServerCore:
    """The I/O-free heart of a bokeh-flask server (Bokeh's ``BokehTornado`` role)."""

    def __init__(self, settings: Settings, apps: Any = None) -> None:
        curdoc.install()
        self.settings = settings
        self.tokens = TokenService.from_settings(settings)
        self.origins = OriginAllowlist.parse(settings.allow_websocket_origin, settings.port)
        self.applications: dict[str, ApplicationContext] = {
            key: ApplicationContext(self, key, application)
            for key, application in build_applications(apps).items()
        }
        self.connections: set[ServerConnection] = set()
        #: Prefix-joined logout URL exposed to apps (set by the auth layer).
        self.logout_url: str | None = None
        self._started_pid: int | None = None
        self._jobs: list[gevent.Greenlet] = []

    # -- lifecycle ----------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start periodic jobs and run ``on_server_loaded`` once per process."""
        if self._started_pid == os.getpid():
            return
        self._started_pid = os.getpid()
        atexit.register(self.stop)
        self._jobs = [gevent.spawn(self._cleanup_loop)]
        if self.settings.keep_alive > 0:
            self._jobs.append(gevent.spawn(self._keep_alive_loop))
        if self.settings.stats_log_frequency > 0:
            self._jobs.append(gevent.spawn(self._every, self.settings.stats_log_frequency, self._log_stats))
        if self.settings.mem_log_frequency > 0:
            self._jobs.append(gevent.spawn(self._every, self.settings.mem_log_frequency, self._log_memory))
        for context in self.applications.values():
            context.run_load_hook()

    def stop(self) -> None:
        """Stop jobs and run ``on_server_unloaded`` (orderly worker exit)."""
        if self._started_pid != os.getpid():
            return
        gevent.killall(self._jobs, block=False)
        self._jobs = []
        for context in self.applications.values():
            context.run_unload_hook()
        self._started_pid = None

    # -- sessions -----------------------------------------------------------------------

    def application_context(self, key: str) -> ApplicationContext:
        try:
            return self.applications[key]
        except KeyError:
            raise HTTPError(404, "Not Found") from None

    def session_for_request(self, context: ApplicationContext, request: RequestInfo) -> ServerSession:
        """Bokeh's SessionHandler.get_session: resolve id and token, get or create the session."""
        extra = self._process_request(context, request)
        session_id, token = resolve_session_request(request, self.tokens, self.settings, extra)
        session = context.create_session_if_needed(session_id, token, request)
        if session.token != token:
            # the page must carry a fresh token even when it joins a live session
            return _TokenView(session, token)  # type: ignore[return-value]
        return session

    @staticmethod
    def _process_request(context: ApplicationContext, request: RequestInfo) -> Mapping[str, Any]:
        try:
            extra = context.application.process_request(request)
        except Exception:
            log.exception("process_request failed for app %s", context.url)
            raise HTTPError(500, "the application's process_request failed") from None
        if not isinstance(extra, Mapping):
            log.error("process_request of app %s returned %r, not a dict", context.url, type(extra))
            raise HTTPError(500, "the application's process_request did not return a dict")
        return extra

    def open_connection(self, context: ApplicationContext, session_id: str, token: str,
                        request: RequestInfo, transport: Transport) -> ServerConnection:
        """Get or build the token's session here, subscribe a connection, send ACK first."""
        session = context.create_session_if_needed(session_id, token, request)
        connection = ServerConnection(context, session, transport)
        session.subscribe(connection)
        self.connections.add(connection)
        connection.send_ack()
        return connection

    def close_connection(self, connection: ServerConnection) -> None:
        connection.detach_session()
        self.connections.discard(connection)

    # -- periodic jobs ------------------------------------------------------------------

    def cleanup_unused_sessions(self) -> int:
        """Discard sessions idle past the unused lifetime, yielding between each one."""
        lifetime = self.settings.unused_session_lifetime / 1000.0
        discarded = 0
        for context in list(self.applications.values()):
            for session in context.expired_sessions(lifetime):
                context.discard_session(session)
                discarded += 1
                gevent.sleep(0)
        return discarded

    def _cleanup_loop(self) -> None:
        interval = self.settings.check_unused_sessions / 1000.0
        while True:
            gevent.sleep(interval)
            try:
                count = self.cleanup_unused_sessions()
                if count:
                    log.debug("discarded %d unused sessions", count)
            except Exception:
                log.exception("unused-session cleanup failed")

    def _keep_alive_loop(self) -> None:
        interval = self.settings.keep_alive / 1000.0
        while True:
            gevent.sleep(interval)
            for connection in list(self.connections):
                try:
                    connection.send_ping()
                except Exception:
                    log.debug("ping failed", exc_info=True)

    def stats(self) -> dict[str, int]:
        return {
            "sessions": sum(len(c.sessions) for c in self.applications.values()),
            "connections": len(self.connections),
        }

    @staticmethod
    def _every(interval_ms: int, job: Any) -> None:
        while True:
            gevent.sleep(interval_ms / 1000.0)
            try:
                job()
            except Exception:
                log.exception("periodic job %s failed", getattr(job, "__name__", job))

    def _log_stats(self) -> None:
        if log.isEnabledFor(logging.DEBUG):
            stats = self.stats()
            log.debug("[pid %d] %d connections, %d sessions", os.getpid(),
                      stats["connections"], stats["sessions"])

    def _log_memory(self) -> None:
        import gc

        from greenlet import greenlet

        stats = self.stats()
        greenlets = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet))
        log.info("[pid %d] memory: %.1f MiB RSS, %d sessions, %d connections, %d greenlets",
                 os.getpid(), _rss_mib(), stats["sessions"], stats["connections"], greenlets)


def _rss_mib() -> float:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class _TokenView:
    """A live session seen through a newly minted token (each page load gets its own)."""

    def __init__(self, session: ServerSession, token: str) -> None:
        self._session = session
        self.token = token

    @property
    def document(self) -> Any:
        return self._session.document

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)
