"""Model ids that are the same on every worker that builds a session.

Bokeh numbers models from one per-process counter, so a session rebuilt from its token on
another worker (or host) gets different ids than the page that worker never saw. While a
session's document is being built we number its models from the session id instead: any
process running the same app code for the same session produces the same ids, so the
page's ``data-root-id`` values name the document the websocket serves, wherever it lands.
Models made later (by callbacks) use Bokeh's own counter; the two never collide because
session-scoped ids carry a different prefix.
"""
from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from typing import Callable, Iterator

import bokeh.document.document
import bokeh.model.model
import bokeh.util.serialization
from gevent.local import local

_MODULES = (bokeh.model.model, bokeh.document.document)


class _Scope(local):
    def __init__(self) -> None:
        self.next_id: Callable[[], str] | None = None


_scope = _Scope()
_bokeh_make_id = bokeh.util.serialization.make_id  # what both modules import as make_id


def make_id() -> str:
    """Bokeh's ``make_id``, numbered per session while a session is being built."""
    next_id = _scope.next_id
    return next_id() if next_id is not None else _bokeh_make_id()


@contextmanager
def session_ids(session_id: str) -> Iterator[None]:
    """Number the models made in this greenlet from ``session_id`` until the block ends."""
    prefix = "s" + hashlib.blake2b(session_id.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    counter = itertools.count(1)
    previous = _scope.next_id
    _scope.next_id = lambda: f"{prefix}-{next(counter)}"
    try:
        yield
    finally:
        _scope.next_id = previous


def install() -> None:
    """Idempotently route Bokeh's model and document ids through :func:`make_id`."""
    for module in _MODULES:
        module.make_id = make_id  # type: ignore[attr-defined]  # Bokeh's stubs leave the import out
