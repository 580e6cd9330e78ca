"""Time the app's own code inside a server under test (measure 5), the same way in both.

Put on ``PYTHONPATH`` by the benchmark, with ``BENCH_APP_TIMER_DIR`` set, for the sliders
measure only. When ``bokeh.application.application`` is first imported (not before:
bokeh-flask's gunicorn master does not load Bokeh, and gevent patches the worker after the
fork), ``Application.initialize_document`` is wrapped: each call adds its thread CPU time,
less any full collection run inside it, to four doubles in the shared file
``<dir>/<pid>``: calls, app CPU seconds, the full collections' CPU seconds left out, and the
longest full collection the process has run (a pause for every request it was serving).
Young collections stay in, as in the client-side figure (``run.AppCost``). The benchmark
reads the file from outside; a call costs two clock reads and a copy into the mapping.
"""
from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import mmap
import os
import struct
import sys
import time
from typing import Any

TARGET = "bokeh.application.application"
RECORD = struct.Struct("dddd")

_directory = os.environ.get("BENCH_APP_TIMER_DIR")
_inside = False
_gc_started = 0.0
_full_gc = 0.0
_totals = [0.0, 0.0, 0.0, 0.0]
_map: mmap.mmap | None = None
_map_pid = 0


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _gc_started, _full_gc
    if info["generation"] != 2:
        return
    if phase == "start":
        _gc_started = time.thread_time()
        return
    took = time.thread_time() - _gc_started
    if _inside:
        _full_gc += took
    totals = _own_totals()
    if took > totals[3]:
        totals[3] = took
        RECORD.pack_into(_map, 0, *totals)


def _record(app_cpu: float, full_gc: float) -> None:
    totals = _own_totals()
    totals[0] += 1
    totals[1] += app_cpu
    totals[2] += full_gc
    RECORD.pack_into(_map, 0, *totals)


def _own_totals() -> list[float]:
    """This process's totals: a forked worker starts from zero, in a file of its own."""
    global _map, _map_pid, _totals
    pid = os.getpid()
    if _map_pid != pid:
        _totals = [0.0, 0.0, 0.0, 0.0]
        with open(os.path.join(_directory, str(pid)), "w+b") as f:
            f.write(bytes(RECORD.size))
            f.flush()
            _map = mmap.mmap(f.fileno(), RECORD.size)
        _map_pid = pid
    return _totals


def _wrap(cls: type) -> None:
    original = cls.initialize_document

    def initialize_document(self: Any, doc: Any) -> None:
        global _inside
        start, full_before = time.thread_time(), _full_gc
        _inside = True
        try:
            original(self, doc)
        finally:
            _inside = False
            full = _full_gc - full_before
            _record(time.thread_time() - start - full, full)

    cls.initialize_document = initialize_document


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Wrap the class as soon as its module has run, whoever imports it first."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        exec_module = spec.loader.exec_module

        def exec_and_wrap(module: Any) -> None:
            exec_module(module)
            _wrap(module.Application)

        spec.loader.exec_module = exec_and_wrap
        return spec


if _directory:
    gc.callbacks.append(_on_gc)
    sys.meta_path.insert(0, _PatchOnImport())


def read(directory: str, pids: list[int]) -> tuple[float, float, float, float]:
    """The benchmark's side, over ``pids``: calls, app CPU s, full-gc CPU s left out of it
    (sums), and the longest full collection (max)."""
    totals = [0.0, 0.0, 0.0, 0.0]
    for pid in pids:
        try:
            with open(os.path.join(directory, str(pid)), "rb") as f:
                values = RECORD.unpack(f.read(RECORD.size))
        except (OSError, struct.error):
            continue
        totals = [a + b for a, b in zip(totals[:3], values[:3])] + [max(totals[3], values[3])]
    return totals[0], totals[1], totals[2], totals[3]
