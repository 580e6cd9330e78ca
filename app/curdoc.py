"""Make ``curdoc()`` greenlet-local.

Bokeh keeps the "patched" current documents in one module-level list, which is right for
Tornado's single-threaded callbacks but wrong when greenlets interleave: a callback that
yields (any I/O under gevent) would see another session's document. We replace that list
with a stack kept per greenlet, so ``curdoc()`` in app code always names its own session.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import bokeh.io.doc
from gevent.local import local


class _GreenletStack(local):
    def __init__(self) -> None:
        self.items: list[Any] = []


class GreenletLocalList:
    """The list operations ``bokeh.io.doc`` uses, backed by a per-greenlet stack."""

    def __init__(self) -> None:
        self._local = _GreenletStack()

    def append(self, item: Any) -> None:
        self._local.items.append(item)

    def pop(self) -> Any:
        return self._local.items.pop()

    def __getitem__(self, index: int) -> Any:
        return self._local.items[index]

    def __len__(self) -> int:
        return len(self._local.items)

    def truncate(self, depth: int) -> None:
        del self._local.items[depth:]


def install() -> None:
    """Idempotently swap Bokeh's global curdoc stack for the greenlet-local one."""
    if not isinstance(bokeh.io.doc._PATCHED_CURDOCS, GreenletLocalList):
        bokeh.io.doc._PATCHED_CURDOCS = GreenletLocalList()  # type: ignore[assignment]


@contextmanager
def balanced() -> Iterator[None]:
    """Restore this greenlet's curdoc stack on exit, even when the body raised.

    Bokeh's ``patch_curdoc`` pops its entry only on success, so every raising callback
    would leave one behind, and a long-lived greenlet (a periodic callback, a websocket)
    would grow its stack without bound.
    """
    stack = bokeh.io.doc._PATCHED_CURDOCS
    depth = len(stack)
    try:
        yield
    finally:
        if isinstance(stack, GreenletLocalList):
            stack.truncate(depth)
