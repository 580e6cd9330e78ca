"""Dispatch complete Bokeh messages from a client to the session (as ``bokeh.server.protocol_handler``).

Client-allowed types map to handlers (the round trip is ``SERVER-INFO-REQ`` on Bokeh 3,
``SYNC`` on Bokeh 4: :data:`app.apps.bokeh_compat.ROUNDTRIP_REQUEST`); a server-only type closes the connection as a
protocol error. A handler that fails on the message's content (an unknown model id, a
wrong value type) answers ERROR with the exception's text and no traceback: the client's
request is refused, the connection and its session carry on.
"""
from __future__ import annotations

import logging
import os
import sysconfig
import time
from typing import Any, Callable

import bokeh
from bokeh.protocol.message import Message

from ..apps import bokeh_compat
from .connection import ServerConnection
from .errors import CLOSE_PROTOCOL_ERROR, CLOSE_SESSION_GONE, WebSocketClose
from .session import SessionDestroyed
from .tokens import short_id

log = logging.getLogger(__name__)


def _pull(connection: ServerConnection, message: Message[Any]) -> None:
    connection.session.pull(connection, message.header["msgid"])


def _push(connection: ServerConnection, message: Message[Any]) -> None:
    connection.session.push(connection, message)


def _patch(connection: ServerConnection, message: Message[Any]) -> None:
    connection.session.patch(connection, message)


def _roundtrip(connection: ServerConnection, message: Message[Any]) -> None:
    connection.send_message(bokeh_compat.roundtrip_reply(message))


HANDLERS: dict[str, Callable[[ServerConnection, Message[Any]], None]] = {
    "PULL-DOC-REQ": _pull,
    "PUSH-DOC": _push,
    "PATCH-DOC": _patch,
    bokeh_compat.ROUNDTRIP_REQUEST: _roundtrip,
}


def handle(connection: ServerConnection, message: Message[Any]) -> None:
    """Answer one message; raise :class:`WebSocketClose` when the connection must end."""
    if not isinstance(message.header.get("msgid"), str):
        raise WebSocketClose(CLOSE_PROTOCOL_ERROR, "message header has no 'msgid'")
    connection.application_context.messages_in += 1
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s in from session %s", message.msgtype, short_id(connection.session.id))
    handler = HANDLERS.get(message.msgtype)
    if handler is None:
        raise WebSocketClose(CLOSE_PROTOCOL_ERROR, f"message type {message.msgtype!r} is not accepted from clients")
    started = time.perf_counter()
    try:
        handler(connection, message)
    except SessionDestroyed:
        raise WebSocketClose(CLOSE_SESSION_GONE, "session was destroyed") from None
    except WebSocketClose:
        raise
    except Exception as exc:
        if _raised_in_app_code(exc):
            # the app's callback failed: its author needs the file and line
            log.error("%s from session %s of app %s: the app's callback raised", message.msgtype,
                      short_id(connection.session.id), connection.application_context.url, exc_info=exc)
            connection.metrics.error("callback")
        else:
            # the client's message could not be applied: one line, details at debug level
            log.warning("%s from session %s of app %s failed: %r", message.msgtype, short_id(connection.session.id),
                        connection.application_context.url, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            connection.metrics.error("bad_message")
        connection.send_message(connection.error(message, f"{type(exc).__name__}: {exc}"[:1000]))
    finally:
        connection.metrics.message_in(message.msgtype, time.perf_counter() - started)


#: Where code that is not the app's lives: the standard library, installed packages (Bokeh
#: among them) and bokeh-flask's core.
_NOT_APP_DIRS = tuple({os.path.abspath(path) + os.sep for path in (
    sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
    os.path.dirname(bokeh.__file__), os.path.dirname(os.path.dirname(os.path.abspath(__file__))))})


def _raised_in_app_code(exc: BaseException) -> bool:
    """Whether ``exc`` went through app code (a callback the patch triggered), as opposed
    to Bokeh refusing the client's patch itself (an unknown model, a value of the wrong type)."""
    tb = exc.__traceback__
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_NOT_APP_DIRS):
            return True
        tb = tb.tb_next
    return False
