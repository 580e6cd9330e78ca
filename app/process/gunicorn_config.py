"""gunicorn's settings and hooks for a bokeh-flask server, shared by ``bokeh-flask serve``
and ``gunicorn.conf.py``: the worker class, connection and header limits, the open-files
limit, and the hooks that start and clean up what the workers of one master share
(metrics and stats directories, the handover listener, one line when descriptors run out).

Imported by the gunicorn master: no Flask and no Bokeh at import time.
"""
from __future__ import annotations

import errno
import logging
import os
import resource
import sys
import time
from types import TracebackType
from typing import Any

from ..apps.versions import untested_notices
from ..config import state_dir
from ..config.settings import Settings, SettingsError
from . import preflight

log = logging.getLogger(__name__)

#: Connections one worker accepts at once: open websockets (one per browser tab) plus
#: requests in flight. At 10,000 gunicorn's old value was reached with 10,000 sessions
#: open and the worker stopped accepting anything, even a page load.
WORKER_CONNECTIONS = 20000
#: File descriptors a worker needs besides its connections (listeners, logs, pipes, files).
SPARE_FILE_DESCRIPTORS = 100
#: Below this many connections per worker, a low open-files limit is worth a warning.
ENOUGH_CONNECTIONS = 4096


def gunicorn_options(settings: Settings | None = None, bind: str | None = None) -> dict[str, Any]:
    """gunicorn settings for a bokeh-flask worker (also used by ``gunicorn.conf.py``)."""
    settings = settings or Settings()
    return {
        "bind": [bind or f"{settings.address or '0.0.0.0'}:{settings.port}"],
        # The session layer runs on gevent: one process serves many websockets; this is
        # gevent's worker, draining at once on a restart (see app/process/worker.py)
        "worker_class": "bokeh_flask.app.process.worker.BokehGeventWorker",
        "workers": settings.workers,
        "worker_connections": WORKER_CONNECTIONS,
        "on_starting": on_starting(settings),
        "post_worker_init": post_worker_init,
        "child_exit": child_exit(settings),
        "on_exit": on_exit(settings),
        # A gevent worker keeps answering gunicorn's heartbeat while sessions work.
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
        # Session tokens travel in the Sec-WebSocket-Protocol header and carry the page's
        # headers and cookies: allow large header lines (Tornado allows 64 KiB).
        "limit_request_field_size": 65536,
        "limit_request_fields": 200,
        # The websocket request line carries the page's query string.
        "limit_request_line": 16384,
        # our own loggers take --log-level debug; gunicorn's debug is its configuration dump
        "loglevel": "info" if settings.log_level in ("debug", "trace") else settings.log_level,
        "errorlog": "-",
        # gunicorn 23.1+ opens a control socket at one fixed path per user; several
        # bokeh-flask servers on one host would fight over it.
        "control_socket_disable": True,
    }


def on_starting(settings: Settings) -> Any:
    """gunicorn's ``on_starting`` hook: the Python and Bokeh releases (:mod:`..apps.versions`:
    one outside the supported range stops the start; one inside it but untested, such as a
    Bokeh pre-release, gets a one-line warning, once per server), the addresses to bind (:mod:`.preflight`: a port in
    use stops the start in one line), the open-files limit, the server's private directory
    (:mod:`..config.state_dir`; one that is not private stops the start), a Redis that does not
    answer (:func:`..auth.logins.check_reachable`: stops the start), with ``--metrics`` a fresh
    prometheus_client multiprocess directory the workers inherit (:mod:`..runtime.metrics`), and with
    ``--admin`` the directory of the workers' stats files (:mod:`..runtime.worker_stats`)."""
    def hook(server: Any) -> None:
        try:
            for warning in untested_notices():
                print(f"bokeh-flask: warning: {warning}", file=sys.stderr, flush=True)
            if not server.LISTENERS and not preflight.inherited_listeners():
                preflight.check_binds(server.cfg.address)
        except SettingsError as exc:
            print(f"bokeh-flask: error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        raise_open_files_limit(server)
        try:
            directory = state_dir.prepare(settings.state_dir)
            from ..auth.logins import check_reachable

            check_reachable(settings)
            if settings.metrics:
                from ..runtime.metrics import prepare_multiprocess_dir

                server.log.info("metrics of every worker in %s", prepare_multiprocess_dir(directory))
            if settings.admin:
                from ..runtime.worker_stats import prepare_dir

                server.log.info("worker stats for the admin page in %s", prepare_dir(directory))
        except SettingsError as exc:  # one line, and the master stops before any worker
            print(f"bokeh-flask: error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return hook


def child_exit(settings: Settings) -> Any:
    """gunicorn's ``child_exit`` hook: an exited worker's live gauges stop counting, and its
    handover sockets go (bound until the process really exited, so no name is ever free
    while a sibling may still hand to it)."""
    def hook(server: Any, worker: Any) -> None:
        from ..runtime import handover
        from ..runtime.metrics import worker_exited

        worker_exited(worker.pid)
        group = handover.group_of_master(os.getpid())
        if group is not None:
            remove_worker_sockets(state_dir.resolve(settings.state_dir), handover.worker_key(group, worker.pid))

    return hook


def on_exit(settings: Settings) -> Any:
    """gunicorn's ``on_exit`` hook: the master removes the metrics and stats directories it
    made, and any socket file its workers left."""
    def hook(server: Any) -> None:
        from ..runtime import handover
        from ..runtime.metrics import remove_multiprocess_dir
        from ..runtime.worker_stats import remove_dir

        remove_multiprocess_dir()
        remove_dir()
        group = handover.group_of_master(os.getpid())
        directory = state_dir.resolve(settings.state_dir)
        if group is not None and os.path.isdir(directory):
            for name in os.listdir(directory):
                if name.endswith(".sock") and f"-{group}." in name:
                    state_dir.remove_if_present(os.path.join(directory, name))

    return hook


def remove_worker_sockets(directory: str, key: str) -> None:
    """Remove an exited worker's handover sockets."""
    from ..runtime import handover

    for path in (handover.socket_path(directory, key), handover.draining_path(directory, key)):
        state_dir.remove_if_present(path)


def raise_open_files_limit(server: Any) -> None:
    """gunicorn's ``on_starting`` hook: raise the master's soft open-files limit to the hard
    limit (workers inherit it), since every connection is a file descriptor and common soft
    limits (1024) are far below ``worker_connections``. When even the hard limit is too low,
    our default pool is capped to what the descriptors allow; a pool size the operator chose
    is kept, with a warning."""
    needed = server.cfg.worker_connections + SPARE_FILE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else needed
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            server.log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if server.cfg.worker_connections != WORKER_CONNECTIONS:
            # the operator chose the pool size (gunicorn.conf.py, GUNICORN_CMD_ARGS): keep it
            server.log.warning(
                "open-files limit %d is below worker_connections %d; a worker may run out of "
                "file descriptors before it reaches that many connections",
                soft, server.cfg.worker_connections)
            return
        # the workers cannot hold more than their descriptors allow: cap the pool to that,
        # and say so only when the cap is low enough to matter
        effective = max(1, soft - SPARE_FILE_DESCRIPTORS)
        server.cfg.set("worker_connections", effective)
        if effective < ENOUGH_CONNECTIONS:
            server.log.warning(
                "open-files limit %d lets each worker hold only about %d connections at once "
                "(pages, static files, websockets); raise the hard limit (`ulimit -Hn`, or "
                "LimitNOFILE= in a systemd unit)", soft, effective)


def post_worker_init(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` hook: descriptor exhaustion in one line, and the
    listener through which the workers of this host hand websockets to their session's
    owner (:mod:`blueprints.websocket.descriptor_passing`), and with ``--admin`` the worker's stats file from
    its start (not its first request: a worker that has served nothing shows too)."""
    from bokeh_flask.blueprints.websocket import descriptor_passing as handover

    report_descriptor_exhaustion(worker)
    handover.start(worker)
    for core in getattr(worker.wsgi, "extensions", {}).get("bokeh_flask", {}).values():
        if core.stats_writer is not None:
            core.stats_writer.start()


#: How often a worker out of file descriptors says so (gevent retries accept up to once a second).
EXHAUSTION_REPORT_INTERVAL = 10.0


def report_descriptor_exhaustion(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` hook: a worker out of file descriptors logs one line
    saying so and what to do, at most every 10 s, instead of gevent's traceback for each
    ``accept`` it retries. The worker keeps serving its open connections either way, and
    accepts again once some close."""
    import gevent
    from gevent.baseserver import BaseServer

    hub = gevent.get_hub()
    print_exception = hub.print_exception
    last_report = -EXHAUSTION_REPORT_INTERVAL

    def report(context: object | None, kind: type[BaseException] | None, value: BaseException | str | None,
               tb: TracebackType | None) -> None:
        nonlocal last_report
        if isinstance(value, SystemExit) and value.code in (0, None):
            return  # gunicorn's quick exit (Ctrl-C) from a greenlet: an exit, not an error
        if not (isinstance(context, BaseServer) and isinstance(value, OSError)
                and value.errno in (errno.EMFILE, errno.ENFILE)):
            print_exception(context, kind, value, tb)
            return
        now = time.monotonic()
        if now - last_report >= EXHAUSTION_REPORT_INTERVAL:
            last_report = now
            worker.log.error(
                "out of file descriptors (%s): new connections wait until some close; raise "
                "the open-files limit (`ulimit -n`, LimitNOFILE=) or add workers", value.strerror)

    # replaced on this hub instance, which calls self.print_exception; mypy compares with
    # the unbound method (self included) and refuses assigning to a method at all
    hub.print_exception = report  # type: ignore[method-assign, assignment]
