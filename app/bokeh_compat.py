"""The one place that knows how the installed Bokeh differs from the others we support.

Core side: no Flask, no sockets. Everything else imports the names below instead of
testing versions itself. Differences are detected by feature where Bokeh offers one, and
each says which releases it concerns:

- Bokeh 3.10 keeps ``curdoc()``'s stack in a ``ContextVar`` (3.6-3.9: a module-level list
  that :mod:`app.curdoc` replaces with a context-local one).
- Bokeh 3.10's ``SessionContext`` has an abstract ``document`` property (our
  ``SessionContext`` implements it on every version).
- Bokeh 3.8 added ``DocumentConfig`` (``doc.config``: ``reconnect_session``,
  ``notify_connection_status``), and BokehJS 3.8 reconnects a dropped websocket with the
  same token; before 3.8 a document has no config and BokehJS never reconnects.
"""
from __future__ import annotations

from typing import Any

import bokeh
import bokeh.io.doc

from .versions import version_tuple

BOKEH_VERSION = version_tuple(bokeh.__version__)

#: Bokeh <= 3.9: ``bokeh.io.doc._PATCHED_CURDOCS`` is a plain list shared by every greenlet.
CURDOC_STACK_IS_LIST = isinstance(bokeh.io.doc._PATCHED_CURDOCS, list)

#: BokehJS reconnects a dropped websocket with the same token (Bokeh >= 3.8).
BOKEHJS_RECONNECTS = BOKEH_VERSION >= (3, 8)


def config_models(document: Any) -> list[Any]:
    """The models a document's ``DocumentConfig`` holds (none before Bokeh 3.8)."""
    config = getattr(document, "_config", None)
    return list(config.references()) if config is not None else []


def reconnect_session(document: Any) -> bool:
    """Whether BokehJS will reconnect this document's websocket when it drops."""
    if not BOKEHJS_RECONNECTS:
        return False
    config = getattr(document, "config", None)
    return bool(getattr(config, "reconnect_session", True))
