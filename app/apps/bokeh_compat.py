"""The one place that knows how the installed Bokeh differs from the others we support.

Core side: no Flask, no sockets. Everything else imports the names below instead of
testing versions itself. Differences are detected by feature where Bokeh offers one, and
each says which releases it concerns:

- Bokeh 3.10 keeps ``curdoc()``'s stack in a ``ContextVar`` (3.6-3.9: a module-level list
  that :mod:`app.apps.curdoc` replaces with a context-local one).
- Bokeh 3.10's ``SessionContext`` has an abstract ``document`` property (our
  ``SessionContext`` implements it on every version).
- Lifecycle hooks: Bokeh 3.6-3.9's ``LifecycleHandler.on_session_created`` returns an
  ``async def`` hook's coroutine unawaited, 3.10's calls the hook in a thread (and a
  coroutine it returns is never awaited either); :func:`session_hook` gives the module's
  own function, which the server calls and awaits itself (see :mod:`app.runtime.asyncio_loop`).
- Bokeh 3.9 sends a pulled or pushed document's arrays as binary buffers after the JSON
  (``Message.add_buffers``); 3.6-3.8 inline them in it as base64: more bytes, the same
  document. The server writes whatever the message holds; clients read both.
- Bokeh 3.8 added ``DocumentConfig`` (``doc.config``: ``reconnect_session``,
  ``notify_connection_status``), and BokehJS 3.8 reconnects a dropped websocket with the
  same token; before 3.8 a document has no config and BokehJS never reconnects.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import bokeh
import bokeh.io.doc
from bokeh.application.handlers.directory import DirectoryHandler
from bokeh.application.handlers.document_lifecycle import DocumentLifecycleHandler
from bokeh.application.handlers.handler import Handler
from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.protocol.message import Message

if TYPE_CHECKING:
    from bokeh.document import Document
    from bokeh.model import Model

from .versions import version_tuple

BOKEH_VERSION = version_tuple(bokeh.__version__)

#: Bokeh <= 3.9: ``bokeh.io.doc._PATCHED_CURDOCS`` is a plain list shared by every greenlet.
CURDOC_STACK_IS_LIST = isinstance(bokeh.io.doc._PATCHED_CURDOCS, list)

#: Pulled and pushed documents carry their arrays as binary buffers (Bokeh >= 3.9).
DOCUMENT_BUFFERS = hasattr(Message, "add_buffers")

#: BokehJS reconnects a dropped websocket with the same token (Bokeh >= 3.8).
BOKEHJS_RECONNECTS = BOKEH_VERSION >= (3, 8)


def config_models(document: Document) -> list[Model]:
    """The models a document's ``DocumentConfig`` holds (none before Bokeh 3.8)."""
    config = getattr(document, "_config", None)
    return list(config.references()) if config is not None else []


def reconnect_session(document: Document) -> bool:
    """Whether BokehJS will reconnect this document's websocket when it drops."""
    if not BOKEHJS_RECONNECTS:
        return False
    config = getattr(document, "config", None)
    return bool(getattr(config, "reconnect_session", True))


def session_hook(handler: Handler, name: str) -> Callable[[Any], Any] | None:
    """What to call for a handler's ``on_session_created`` / ``on_session_destroyed``: the
    hook module's own function for lifecycle handlers (so an ``async def`` hook can be
    awaited, on every Bokeh), the handler's method otherwise. None for Bokeh's
    ``DocumentLifecycleHandler`` (the server runs the document's destroy callbacks itself,
    without its full ``gc.collect()`` per session) and for hooks a handler does not define:
    each coroutine costs a trip through the asyncio loop, and discarding thousands of
    sessions under load must not wait for that many."""
    inner = getattr(handler, "_lifecycle_handler", handler) if isinstance(handler, DirectoryHandler) else handler
    if isinstance(inner, DocumentLifecycleHandler):
        return None
    if isinstance(inner, LifecycleHandler):
        hook = getattr(inner, f"_{name}")
        return None if getattr(hook, "__name__", "") == "_do_nothing" else hook
    if getattr(type(inner), name) is getattr(Handler, name):
        return None  # Bokeh's no-op: skip it rather than run a coroutine for nothing
    method: Callable[[Any], Any] = getattr(inner, name)
    return method
