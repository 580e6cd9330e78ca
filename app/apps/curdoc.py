"""Make ``curdoc()`` local to the running greenlet (and asyncio task).

Bokeh up to 3.9 keeps the "patched" current documents in one module-level list, which is
right for Tornado's single-threaded callbacks but wrong when greenlets interleave: a
callback that yields (any I/O under gevent) would see another session's document. Bokeh
3.10 keeps them in a ``ContextVar``, and every greenlet runs in a context of its own, so
there it is local already. On older Bokeh we put a list-like view of such a variable in
place of the list (see :mod:`app.apps.bokeh_compat`), so both behave the same: ``curdoc()`` in
app code always names its own session, in a greenlet or in an asyncio task it started.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Iterator

import bokeh.io.doc

from . import bokeh_compat

if TYPE_CHECKING:
    import weakref

    from bokeh.document import Document
    from bokeh.document.locking import UnlockedDocumentProxy

    #: what Bokeh keeps on its stack: a weak reference to each patched-in document
    _Patched = weakref.ReferenceType[Document | UnlockedDocumentProxy]

_STACK: ContextVar[tuple[_Patched, ...]] = ContextVar("bokeh_flask_curdocs", default=())


class ContextLocalList:
    """The list operations Bokeh <= 3.9's ``bokeh.io.doc`` uses, on a context-local tuple."""

    def append(self, item: _Patched) -> None:
        _STACK.set((*_STACK.get(), item))

    def pop(self) -> _Patched:
        stack = _STACK.get()
        _STACK.set(stack[:-1])
        return stack[-1]

    def __getitem__(self, index: int) -> _Patched:
        return _STACK.get()[index]

    def __len__(self) -> int:
        return len(_STACK.get())

    def truncate(self, depth: int) -> None:
        stack = _STACK.get()
        if len(stack) > depth:
            _STACK.set(stack[:depth])


def install() -> None:
    """Idempotently make Bokeh's curdoc stack context-local (a no-op where it is)."""
    if bokeh_compat.CURDOC_STACK_IS_LIST and not isinstance(bokeh.io.doc._PATCHED_CURDOCS, ContextLocalList):
        # the list-alike stands in for the list Bokeh declares
        bokeh.io.doc._PATCHED_CURDOCS = ContextLocalList()  # type: ignore[assignment]


def depth() -> int:
    """How many documents are patched in as ``curdoc()`` here (for tests and checks)."""
    stack = bokeh.io.doc._PATCHED_CURDOCS
    return len(stack.get() if isinstance(stack, ContextVar) else stack)


@contextmanager
def balanced() -> Iterator[None]:
    """Restore this context's curdoc stack on exit, even when the body raised.

    Bokeh <= 3.9's ``patch_curdoc`` pops its entry only on success, so every raising
    callback would leave one behind, and a long-lived greenlet (a periodic callback, a
    websocket) would grow its stack without bound. Bokeh 3.10 resets it in a ``finally``.
    """
    stack = bokeh.io.doc._PATCHED_CURDOCS
    if not isinstance(stack, ContextLocalList):
        yield
        return
    start = len(stack)
    try:
        yield
    finally:
        stack.truncate(start)
