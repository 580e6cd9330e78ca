"""The worker's memory policy: what CPython's cyclic collector rescans, and when freed memory
goes back to the OS.

A Bokeh server keeps every session's document alive until it expires (~1,400 objects for
``examples/sliders.py``). Left to itself, Python's collector rescans all of them in each
full collection, and those come each time the old generation grows by a quarter: under
page load that is most of a millisecond per page, in pauses that grow with the live
sessions. So:

- the start-up heap (Flask, Bokeh, the apps' modules) is frozen once (:func:`tune_collector`);
- whatever survives a full collection is frozen too (:func:`_freeze_survivors`): each later
  full collection scans only what is newer, so each long-lived object is scanned about once,
  and Python's own schedule (a full collection per ten middle ones) keeps each pause short;
- frozen objects are rescanned (:func:`rescan`) once memory has grown by a quarter since the
  last rescan, at the cleanup job's next reclaim after a burst of discarded sessions or, with
  no discards, :data:`RESCAN_INTERVAL` seconds after the last (:func:`rescan_due`); and
  always when a worker that reclaimed memory is next idle, so cycles among expired
  sessions' objects cannot keep their memory.
"""
from __future__ import annotations

import ctypes
import gc
import os
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

#: Frozen objects are rescanned once allocated memory grew by this share since the last
#: rescan...
RESCAN_GROWTH = 0.25
#: ...at the next burst of discards, or after this many seconds without one.
RESCAN_INTERVAL = 600.0

_tuned_pid: int | None = None
_thawed = False
_last_rescan = (0.0, 0)  # (monotonic time, allocated blocks) right after the last rescan


def tune_collector() -> None:
    """Once per process: freeze the start-up heap, and what survives each later full
    collection.

    The collect first keeps start-up garbage out of the frozen set (full collections over it
    paused a loaded worker)."""
    global _tuned_pid
    if _tuned_pid == os.getpid():
        return
    _tuned_pid = os.getpid()
    gc.collect()
    gc.freeze()
    _note_rescan()
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """gc callback: after a full collection, move its survivors to the permanent generation.

    A full collection has just emptied the young generations of garbage, so only live
    objects are frozen. Under page load with sessions kept, full collections rescanned every
    live session, a pause that grew with each one; now each scans only the sessions made
    since the one before, for the same total CPU."""
    if phase == "stop" and info["generation"] == 2 and not _thawed and _tuned_pid == os.getpid():
        gc.freeze()


@contextmanager
def thawed() -> Iterator[None]:
    """Put frozen objects back under the collector for the block: a ``gc.collect()`` in it
    sees everything (and ``gc.get_objects()`` lists it). Frozen again after, if this process
    freezes at all."""
    global _thawed
    _thawed = True
    gc.unfreeze()
    try:
        yield
    finally:
        _thawed = False
        if _tuned_pid == os.getpid():
            gc.freeze()


def _note_rescan() -> None:
    global _last_rescan
    _last_rescan = (time.monotonic(), sys.getallocatedblocks())


def rescan() -> int:
    """A full collection over everything, frozen objects included; returns what it found."""
    with thawed():
        found = gc.collect()
    _note_rescan()
    return found


def rescan_due(after_discards: bool) -> bool:
    """Whether frozen objects should be rescanned: once the process's allocated blocks grew
    by :data:`RESCAN_GROWTH` since the last rescan (Python's own rule for full collections,
    which also bounds the garbage they can hide: cycles a session's callbacks dropped,
    objects of requests in flight at a freeze), at the next burst of discarded sessions or,
    without one, :data:`RESCAN_INTERVAL` after the last rescan.

    A worker whose sessions come and go without leaving garbage does not grow, so its
    reclaims skip rescanning the start-up heap; while sessions only pile up (no discards),
    rescans wait for the interval instead of recurring at each 25%. Counting blocks costs a
    walk over pymalloc's arenas, not over the objects."""
    when, blocks = _last_rescan
    if _tuned_pid != os.getpid() or sys.getallocatedblocks() < blocks * (1 + RESCAN_GROWTH):
        return False
    return after_discards or time.monotonic() - when >= RESCAN_INTERVAL


def reclaim_arenas(rescan_frozen: bool = True) -> None:
    """Let CPython's small-object allocator unmap the 1 MiB arenas a burst of sessions grew.

    An arena goes back to the OS only when every block in it is free. After a burst of
    sessions expired, each arena they had added still held blocks allocated meanwhile, so
    none was returned: objects in reference
    cycles (closed websockets' wsproto frame parsers and their generators), tuples, lists
    and dicts parked in CPython's free lists, and attribute names held by CPython's method
    cache (a strong reference per entry, to temporary strings from ``getattr`` by C code).
    A full collection frees the cycles (frozen ones too with ``rescan_frozen``) and empties
    the free lists; clearing the method cache drops the names (it refills on use). Arenas
    holding anything still alive stay: objects of open connections and caches first filled
    during the burst.
    """
    if rescan_frozen:
        rescan()
    else:
        gc.collect()
    if _clear_type_cache is not None:
        _clear_type_cache()


#: CPython's method-cache reset (renamed in 3.13; absent from other interpreters).
_clear_type_cache = getattr(sys, "_clear_internal_caches", None) or getattr(sys, "_clear_type_cache", None)


def reclaim_and_trim(rescan_frozen: bool = True) -> None:
    """Reclaim CPython's arenas, then glibc's free heap pages."""
    reclaim_arenas(rescan_frozen)
    malloc_trim()


def _load_malloc_trim() -> Callable[[int], object] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_libc_malloc_trim = _load_malloc_trim()


def malloc_trim() -> None:
    """Return free heap pages to the OS (glibc only; a no-op elsewhere)."""
    if _libc_malloc_trim is not None:
        _libc_malloc_trim(0)


def rss_mib() -> float:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0
