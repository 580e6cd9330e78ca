"""PeriodicCallback: a job run every so often in the worker's gevent loop (Tornado's
``PeriodicCallback``, which ``bokeh serve`` uses for the same jobs).

One libev timer, made when the job starts, fires every tick, and each run gets a fresh
greenlet. A greenlet looping on ``gevent.sleep`` would allocate a new timer, waiter and
argument tuple each tick and hold them while it sleeps: a few long-lived objects that land
among the memory a burst of sessions used, and keep CPython from handing those 1 MiB arenas
back to the OS once the sessions are gone.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

import gevent
from gevent import get_hub

if TYPE_CHECKING:
    from gevent._types import _TimerWatcher  # the stubs' name for what loop.timer() returns

log = logging.getLogger(__name__)


class PeriodicCallback:
    """Call ``job`` every ``interval`` seconds until :meth:`stop`. A tick that finds the
    previous run still going is skipped, so a slow run never overlaps the next one."""

    def __init__(self, job: Callable[[], object], interval: float, name: str = "") -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.job = job
        self.interval = interval
        self.name = name or getattr(job, "__name__", repr(job))
        self._timer: _TimerWatcher | None = None
        self._running: gevent.Greenlet[[], None] | None = None

    @property
    def started(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        if self._timer is None:
            self._timer = get_hub().loop.timer(self.interval, self.interval)
            self._timer.start(self._tick)

    def stop(self) -> None:
        """Stop the timer; a run in progress is killed (it is at a gevent switch)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
            timer.close()
        running, self._running = self._running, None
        if running is not None:
            running.kill(block=False)

    def _tick(self) -> None:
        if self._running is None:
            self._running = gevent.spawn(self._run)

    def _run(self) -> None:
        try:
            self.job()
        except Exception:
            log.exception("periodic job %s failed", self.name)
        finally:
            if self._running is gevent.getcurrent():
                self._running = None
