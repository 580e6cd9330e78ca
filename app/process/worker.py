"""bokeh-flask's gunicorn worker: gevent's, with a shutdown that loses no tab.

gunicorn's gevent worker notices SIGTERM (a worker restart, a ``kill -HUP`` reload, a
scale-down) at its next one-second check and its websockets die with the process, without
a close frame; on a reload the new workers are still loading the apps by then. This one,
on SIGTERM, marks itself draining at once (``/readyz`` answers 503, no session is handed to
it), keeps its open websockets while a sibling worker is still booting (a reload's new
workers load the apps), then stops accepting and closes
every websocket with 1001 (going away), so BokehJS (>= 3.8) reconnects straight away, to a
worker that serves it; spread over up to a few seconds when a sibling serves, so the tabs
do not all reconnect at the same instant. Requests in flight finish as gunicorn's graceful
timeout allows. SIGINT/SIGQUIT (Ctrl-C) does the same without waiting for anyone; a worker
that ends for another reason (``max_requests``, its master gone) drains as on SIGTERM.

Imported by the gunicorn master (``worker_class``), so it imports no Flask and no Bokeh.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from gevent.server import StreamServer
from gunicorn.workers import base, ggevent

from ..apps.load_errors import describe
from ..config.declare import SettingsError
from ..runtime import handover
from . import dev_reload

#: gunicorn's exit status for a worker that could not boot: its master stops, with a reason.
WORKER_BOOT_ERROR = 3

if TYPE_CHECKING:
    from ..sessions.server import ServerCore

log = logging.getLogger(__name__)

#: --dev: how long a replaced worker leaves its pages to reload themselves (a few of their
#: polls for the new worker's boot id) before it closes their websockets.
DEV_PAGE_GRACE = 3 * dev_reload.POLL_INTERVAL_MS / 1000
#: How often a draining worker looks for a ready sibling.
SIBLING_POLL = 0.05
#: A drain with a serving sibling closes its websockets over this many seconds per
#: websocket (20 tabs: 1 s), at most CLOSE_SPREAD_MAX, in batches every CLOSE_TICK.
CLOSE_SPREAD_PER_SOCKET = 0.05
CLOSE_SPREAD_MAX = 5.0
CLOSE_TICK = 0.05


class _TrackedStreamServer(StreamServer):
    """gunicorn's gevent worker keeps its servers in local variables of ``run``; this
    records them, so a drain can close their listening sockets at once."""

    servers: list[StreamServer] = []

    def start(self) -> None:
        super().start()
        _TrackedStreamServer.servers.append(self)


class BokehGeventWorker(ggevent.GeventWorker):
    """``worker_class`` of ``bokeh-flask serve`` and ``gunicorn.conf.py``."""

    _draining = False

    def load_wsgi(self) -> None:
        """Import the app; a configuration our code refuses (a Flask-Login app without a
        secret key, a bad setting in Flask config) is one line and gunicorn's "failed to
        boot" exit, not a worker traceback."""
        try:
            super().load_wsgi()
        except SettingsError as exc:  # an app's load error: its block (file, line, caret)
            print(f"bokeh-flask: error: {describe(exc)}", file=sys.stderr, end="", flush=True)
            sys.exit(WORKER_BOOT_ERROR)

    def run(self) -> None:
        self._drained = Event()
        # what GeventWorker.run builds from; the stubs do not re-export gunicorn's import of it
        ggevent.StreamServer = _TrackedStreamServer  # type: ignore[attr-defined]
        super().run()
        if not self._draining:  # max_requests reached, or the master is gone: drain all the same
            self.drain(True)
        self._drained.wait(timeout=self.cfg.graceful_timeout)  # gunicorn's loop ended first

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: gunicorn's graceful exit, and the drain now instead of within a second."""
        super().handle_exit(sig, frame)
        gevent.spawn(self.drain, True)

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGINT/SIGQUIT: drain, then gunicorn's quick exit (outside the signal handler)."""
        gevent.spawn(self._quit, sig, frame)

    def _quit(self, sig: int, frame: Any) -> None:
        self.drain(False)
        base.Worker.handle_quit(self, sig, frame)

    def drain(self, wait_for_successor: bool) -> None:
        if self._draining:
            return
        self._draining = True
        cores = list(getattr(self.wsgi, "extensions", {}).get("bokeh_flask", {}).values())
        try:
            for core in cores:
                core.begin_drain()
            if cores:
                from bokeh_flask.blueprints.websocket import descriptor_passing as transport

                transport.stop(self)
            successor = self._wait_for_successor() if wait_for_successor else False
            for server in _TrackedStreamServer.servers:
                # close, not only stop accepting: on a shutdown the master has closed its copy,
                # so the port refuses at once and a load balancer moves on instead of queueing
                # connections this worker will reset when it exits (a reload's new workers and
                # the master keep theirs)
                server.close()
            if successor and any(core.settings.dev for core in cores):
                # --dev: the pages notice the new worker by themselves and reload; closing
                # their websockets first would have BokehJS rebuild each session for nothing
                gevent.sleep(DEV_PAGE_GRACE)
            self._close_websockets(cores, spread=successor)
        except Exception:  # the worker exits either way
            log.exception("draining failed")
        finally:
            self._drained.set()

    def _wait_for_successor(self) -> bool:
        """While a sibling worker is still booting (a reload forks the new workers before it
        stops the old ones), within the graceful timeout; at once when none is (a shutdown,
        or one worker's restart while its siblings serve). True if a sibling now serves."""
        from bokeh_flask.blueprints.websocket import descriptor_passing as transport

        group = handover.group_of_master(self.ppid)
        directory = transport.listening_directory()
        if group is None or directory is None:
            return False
        deadline = time.monotonic() + max(0.0, self.cfg.graceful_timeout - 1.0)
        while True:
            states = handover.sibling_states(directory, group, [p for p in _children(self.ppid) if p != os.getpid()])
            if "booting" not in states.values() or time.monotonic() >= deadline:
                return "ready" in states.values()
            gevent.sleep(SIBLING_POLL)

    def _close_websockets(self, cores: list[ServerCore], spread: bool) -> None:
        """Close every websocket with 1001. When a sibling serves (a reload, one worker's
        restart), spread the closes: tabs that reconnect a few at a time find their session
        rebuilt and pulled at once, where all at the same instant they queue behind each
        other (and behind the page requests the boot held back) on the new workers. Each tab
        stays served here until its own close."""
        total = sum(core.open_websockets() for core in cores)
        window = 0.0
        if spread:
            window = min(CLOSE_SPREAD_PER_SOCKET * total, CLOSE_SPREAD_MAX, self.cfg.graceful_timeout / 3)
        ticks = max(1, round(window / CLOSE_TICK))
        per_tick = -(-total // ticks)  # ceiling
        closed = 0
        for tick in range(ticks):
            if tick:
                gevent.sleep(CLOSE_TICK)
            closed += sum(core.close_websockets(limit=per_tick) for core in cores)
        closed += sum(core.close_websockets() for core in cores)  # any opened since the count
        if closed:
            log.info("[pid %d] draining: closed %d websockets with 1001 (going away)%s", os.getpid(), closed,
                     f" over {window:.1f} s" if ticks > 1 else "")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as file:
            return [int(child) for child in file.read().split()]
    except OSError:
        return []
