"""Session callbacks (next-tick, timeout, periodic) scheduled as gevent greenlets.

Bokeh's Document tells the session about callbacks through ``_session_callback_added`` /
``_session_callback_removed``; this module owns their timing. Each callback runs through a
``runner`` supplied by the session, which takes the document lock (unless the callback is
marked ``nolock``) and logs exceptions, so one failing callback never stops its schedule.

``doc.add_next_tick_callback`` is Bokeh's documented way for other OS threads to hand work to
a session, so scheduling from a thread other than the worker's hub thread is marshalled
onto the hub with ``run_callback_threadsafe``.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import gevent
from bokeh.server.callbacks import NextTickCallback, PeriodicCallback, SessionCallback, TimeoutCallback
from gevent.monkey import get_original

log = logging.getLogger(__name__)

_real_get_ident = get_original("_thread", "get_ident")

Runner = Callable[[SessionCallback], None]


class _Scheduled:
    """One scheduled callback: its greenlet and whether it is running or cancelled."""

    __slots__ = ("callback", "greenlet", "cancelled", "running")

    def __init__(self, callback: SessionCallback) -> None:
        self.callback = callback
        self.greenlet: gevent.Greenlet[..., None] | None = None
        self.cancelled = False
        self.running = False


class CallbackGroup:
    """All scheduled callbacks of one session; :meth:`remove_all` on destroy."""

    def __init__(self, runner: Runner) -> None:
        #: usually the session's bound method: dropped by :meth:`remove_all` to break the
        #: session -> group -> session cycle, so a discarded session is freed at once
        self._runner: Runner | None = runner
        self._scheduled: dict[str, _Scheduled] = {}
        #: next-tick callbacks whose greenlet has not started yet (see :meth:`unstarted_next_ticks`)
        self._unstarted: set[str] = set()
        self._hub = gevent.get_hub()
        self._thread_id = _real_get_ident()
        self._closed = False

    def add(self, callback: SessionCallback) -> None:
        if _real_get_ident() != self._thread_id:
            self._hub.loop.run_callback_threadsafe(self.add, callback)
            return
        if self._closed:
            _release(callback)
            return
        if callback.id in self._scheduled:
            raise ValueError(f"callback {callback.id} is already scheduled")
        entry = _Scheduled(callback)
        self._scheduled[callback.id] = entry
        if isinstance(callback, PeriodicCallback):
            entry.greenlet = gevent.spawn(self._periodic, callback, entry)
        elif isinstance(callback, TimeoutCallback):
            entry.greenlet = gevent.spawn_later(callback.timeout / 1000.0, self._once, callback, entry)
        elif isinstance(callback, NextTickCallback):
            self._unstarted.add(callback.id)
            entry.greenlet = gevent.spawn(self._once, callback, entry)
        else:
            del self._scheduled[callback.id]
            raise ValueError(f"unknown session callback type {type(callback).__name__}")

    def remove(self, callback: SessionCallback) -> None:
        if _real_get_ident() != self._thread_id:
            self._hub.loop.run_callback_threadsafe(self.remove, callback)
            return
        entry = self._scheduled.pop(callback.id, None)
        self._unstarted.discard(callback.id)
        if entry is not None:
            self._cancel(entry)

    def unstarted_next_ticks(self) -> bool:
        """Whether a next-tick callback waits for its greenlet to start."""
        return bool(self._unstarted)

    def remove_all(self) -> None:
        """Cancel everything and refuse new callbacks (the session is being destroyed)."""
        self._closed = True
        self._runner = None
        entries, self._scheduled = list(self._scheduled.values()), {}
        self._unstarted.clear()
        for entry in entries:
            self._cancel(entry)

    def __len__(self) -> int:
        return len(self._scheduled)

    @staticmethod
    def _cancel(entry: _Scheduled) -> None:
        entry.cancelled = True
        greenlet = entry.greenlet
        if greenlet is not None and not entry.running and greenlet is not gevent.getcurrent():
            greenlet.kill(block=False)
        _release(entry.callback)

    def _run(self, callback: SessionCallback, entry: _Scheduled) -> None:
        runner = self._runner
        if runner is None:
            return
        entry.running = True
        try:
            runner(callback)
        except Exception:
            log.exception("error in session callback %s", callback.id)
        finally:
            entry.running = False

    def _once(self, callback: SessionCallback, entry: _Scheduled) -> None:
        self._unstarted.discard(callback.id)
        if not entry.cancelled:
            # one-shot callbacks remove themselves from the Document before running
            self._run(callback, entry)
        self._scheduled.pop(callback.id, None)
        _release(callback)

    def _periodic(self, callback: PeriodicCallback, entry: _Scheduled) -> None:
        """Run every period until cancelled.

        Cancelling kills this greenlet in its sleep. The ``GreenletExit`` is caught here so
        the dead greenlet does not keep it as its value: its traceback's frames would form a
        reference cycle (greenlet -> exception -> frames -> greenlet) holding the session's
        callbacks and document until a full garbage collection.
        """
        period = callback.period / 1000.0
        deadline = time.monotonic() + period
        try:
            while not entry.cancelled:
                gevent.sleep(max(0.0, deadline - time.monotonic()))
                if entry.cancelled:
                    break
                # the next period starts before this run, as in Bokeh; a slow run is not
                # followed by a burst of catch-up runs
                deadline = max(deadline + period, time.monotonic())
                self._run(callback, entry)
        except gevent.GreenletExit:
            return


def _release(callback: SessionCallback) -> None:
    """Drop a finished or cancelled callback's function.

    Bokeh wraps a one-shot callback in a closure that refers back to the callback object
    (to remove it from the Document before running) and to the Document itself: a
    reference cycle that would keep the whole session alive until a full garbage
    collection, long after the callback ran.
    """
    callback._callback = None  # type: ignore[assignment]  # Bokeh types it as always set
