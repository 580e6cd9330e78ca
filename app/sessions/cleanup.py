"""The unused-session cleanup job: discard sessions idle past their lifetime, without
stalling other greenlets, and hand the memory they freed back to the OS.

Split from :mod:`.server` (one job per module); ``ServerCore`` runs :meth:`run_pass` every
``--check-unused-sessions`` milliseconds.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Mapping

import gevent

from ..runtime import memory

if TYPE_CHECKING:
    from .contexts import ApplicationContext

log = logging.getLogger(__name__)

#: The cleanup job discards for at most this many seconds at a time...
DISCARD_SLICE = 0.02
#: ...then pauses this long, so other greenlets run (and it still keeps up under load).
DISCARD_PAUSE = 0.001
#: A cleanup pass that discarded at least this many sessions hands freed memory back to
#: the OS (glibc keeps it otherwise: RSS would stay at its peak after a burst of sessions).
TRIM_AFTER_DISCARDS = 100
#: Once that many were discarded, Python's own arenas are reclaimed too (a full collection,
#: see :func:`memory.reclaim_arenas`) when the pass leaves at most this many live sessions: the
#: collection's pause grows with live objects (every live session adds to it), and the
#: arenas cannot come back while most of the burst's sessions are still alive anyway.
RECLAIM_MAX_SESSIONS = 50
#: ...and, however many are left, once the discards since the last one reach this many and
#: the number of live sessions. Cycles an app leaves per session (a module-level model no
#: root uses, a closure over itself) outlive the session until a full collection, or, once
#: frozen (:mod:`..runtime.memory`), until a rescan, which such a reclaim runs when memory has grown
#: by a quarter: without this, a worker serving an app with one such source grew with every
#: session, for good. Counting against the live sessions keeps the collection's cost per
#: discarded session bounded (the pause grows with them), like Python's own rule of waiting
#: for 25% new objects.
COLLECT_AFTER_DISCARDS = 500
#: A worker that used less than this share of a core between two cleanup passes is idle.
IDLE_CPU_SHARE = 0.01


class SessionCleanup:
    """One worker's cleanup job and its memory bookkeeping."""

    def __init__(self, applications: Mapping[str, ApplicationContext], unused_lifetime_ms: int) -> None:
        #: the worker's apps (the core's own mapping)
        self.applications = applications
        self.lifetime = unused_lifetime_ms / 1000.0
        self._discarded_since_reclaim = 0
        self._reclaim_when_idle = False
        self._last_pass_clock = (time.monotonic(), time.process_time())

    def discard_unused(self) -> int:
        """Discard sessions idle past the unused lifetime, in short slices between which
        other greenlets run.

        No ``gc.collect()`` here (Bokeh runs one per session): its cost grows with every live
        session, and it starved the cleanup itself under load. It is not needed either:
        ``ServerSession.destroy`` breaks the documents' reference cycles, so reference
        counting frees each session as it is discarded.
        """
        lifetime = self.lifetime
        discarded = 0
        slice_end = time.perf_counter() + DISCARD_SLICE
        for context in list(self.applications.values()):
            for session in context.expired_sessions(lifetime):
                context.discard_session(session)
                discarded += 1
                if time.perf_counter() > slice_end:
                    # a real pause, not sleep(0): it lets the hub poll sockets and run
                    # timers, so requests are answered between slices
                    gevent.sleep(DISCARD_PAUSE)
                    slice_end = time.perf_counter() + DISCARD_SLICE
            context.discard_when_free(lifetime)
        return discarded

    def run_pass(self) -> int:
        """One run of the cleanup job: discard unused sessions, then hand the memory they
        freed back to the OS. Returns the number discarded.

        After a pass that reclaimed arenas, the first pass that finds nothing to discard
        in a worker idle since the pass before reclaims once more. Meanwhile (the last
        connections closing, other requests) CPython's free lists and method cache refill
        with blocks in the arenas the sessions used, and nothing would empty them again (the
        benchmark's memory after expiry, ``bench/run.py`` measure 10, showed it). Waiting for
        an idle worker matters: under load, each request
        refills them at once. That idle reclaim rescans frozen objects too; the others, and
        passes with nothing to reclaim, do when :func:`memory.rescan_due` says so.
        """
        idle = self.idle_since_last_pass()
        count = self.discard_unused()
        if not count:
            if self._reclaim_when_idle and idle:
                self._reclaim_when_idle = False
                # from the hub once this job's greenlet is gone: what it frees after the
                # collection (its locals, the greenlet's own dict and lists) would refill
                # the free lists straight away
                gevent.get_hub().loop.run_callback(memory.reclaim_and_trim)
            elif memory.rescan_due(after_discards=False):
                memory.rescan()
            return 0
        log.debug("discarded %d unused sessions", count)
        self._discarded_since_reclaim += count
        discarded, left = self._discarded_since_reclaim, sum(len(c.sessions) for c in self.applications.values())
        if (discarded >= max(COLLECT_AFTER_DISCARDS, left)
                or (discarded >= TRIM_AFTER_DISCARDS and left <= RECLAIM_MAX_SESSIONS)):
            self._discarded_since_reclaim = 0
            self._reclaim_when_idle = True
            memory.reclaim_and_trim(rescan_frozen=memory.rescan_due(after_discards=True))
        elif count >= TRIM_AFTER_DISCARDS:
            memory.malloc_trim()
        return count

    def idle_since_last_pass(self) -> bool:
        """Whether this process used under ``IDLE_CPU_SHARE`` of a core since the last call."""
        now, cpu = time.monotonic(), time.process_time()
        last_now, last_cpu = self._last_pass_clock
        self._last_pass_clock = (now, cpu)
        return cpu - last_cpu < IDLE_CPU_SHARE * (now - last_now)
