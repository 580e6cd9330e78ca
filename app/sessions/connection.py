"""ServerConnection: one websocket's protocol state, independent of the socket.

States are explicit (OPEN after ACK, CLOSED after detach); frames go out through a
:class:`Transport` the web layer supplies. Incoming fragments are assembled with Bokeh's
``Receiver`` (:class:`app.apps.bokeh_compat.MessageReceiver`: the installed Bokeh's wire
format); complete messages are dispatched by :mod:`app.sessions.protocol_handler`.
Malformed input raises :class:`WebSocketClose` with a code in 1000-4999 and a reason that
never contains a traceback.
"""
from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any
from typing import Protocol as TypingProtocol

from bokeh.protocol.exceptions import MessageError, ProtocolError, ValidationError

from ..apps import bokeh_compat
from ..apps.bokeh_compat import MessageReceiver
from .errors import CLOSE_PROTOCOL_ERROR, WebSocketClose
from .frames import Frame
from .tokens import short_id

if TYPE_CHECKING:
    from bokeh.protocol.message import Message

    from .contexts import ApplicationContext
    from .session import ServerSession

log = logging.getLogger(__name__)


class Transport(TypingProtocol):
    """What a connection needs from the websocket layer."""

    def write_frames(self, frames: list[Frame]) -> bool:
        """Write one message's frames, unbroken; False if the socket is gone."""

    def close(self, code: int, reason: str) -> None:
        """Close the websocket (idempotent)."""

    def ping(self, payload: bytes) -> None:
        """Send a keep-alive ping."""


class ConnectionState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class ServerConnection:
    """The server side of one Bokeh protocol connection."""

    def __init__(self, application_context: ApplicationContext, session: ServerSession,
                 transport: Transport) -> None:
        self.application_context = application_context
        #: the app's instruments, at hand for every message
        self.metrics = application_context.metrics
        self.session = session
        self.transport = transport
        self.state = ConnectionState.OPEN
        self.ping_count = 0
        self.pong_count = 0
        self._receiver: MessageReceiver | None = None

    # -- outgoing -----------------------------------------------------------------------

    def write_frames(self, frames: list[Frame], msgtype: str) -> None:
        """Write one ``msgtype`` message's frames; a dead socket detaches the session."""
        if self.state is not ConnectionState.OPEN:
            return
        self.application_context.messages_out += 1
        self.metrics.message_out(msgtype)
        if not self.transport.write_frames(frames):
            self.detach_session()

    def send_message(self, message: Message[Any]) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s out to session %s", message.msgtype, short_id(self.session.id))
        # written at once, so buffers can stay views of the document's arrays (no copy)
        self.write_frames(bokeh_compat.message_frames(message, views=True), message.msgtype)

    def send_ack(self) -> None:
        self.send_message(bokeh_compat.ack())

    def ok(self, message: Message[Any]) -> Message[Any]:
        return bokeh_compat.ok(message)

    def error(self, message: Message[Any], text: str) -> Message[Any]:
        """An ERROR reply; never carries a server traceback."""
        return bokeh_compat.error(message, text)

    def send_ping(self) -> None:
        if self.state is ConnectionState.OPEN:
            self.transport.ping(str(self.ping_count).encode("ascii"))
            self.ping_count += 1

    def on_pong(self, payload: bytes) -> None:
        try:
            self.pong_count = int(payload)
        except ValueError:
            log.debug("pong with a non-numeric payload")

    # -- incoming -----------------------------------------------------------------------

    def receive_fragment(self, fragment: str | bytes) -> Message[Any] | None:
        """Feed one websocket message; return a complete Bokeh message or None."""
        if self._receiver is None:
            self._receiver = MessageReceiver()
        try:
            message = self._receiver.consume(fragment)
        except (MessageError, ProtocolError, ValidationError) as exc:
            raise WebSocketClose(CLOSE_PROTOCOL_ERROR, _reason(exc)) from None
        except (KeyError, ValueError, TypeError, AttributeError, UnicodeError, RecursionError) as exc:
            raise WebSocketClose(CLOSE_PROTOCOL_ERROR, f"server failed to parse a message: {_reason(exc)}") from None
        if message is not None:
            # Bokeh 3's Receiver keeps the last message (and its buffers) until the next one
            # arrives; an idle connection holds none
            self._drop_receiver()
        return message

    # -- teardown -----------------------------------------------------------------------

    def detach_session(self) -> None:
        """Leave the session (idempotent); the session may then expire."""
        if self.state is ConnectionState.CLOSED:
            return
        self.state = ConnectionState.CLOSED
        self.session.unsubscribe(self)
        self.session.notify_connection_lost()

    def release(self) -> None:
        """Drop what the connection holds once its socket is gone."""
        self._drop_receiver()

    def _drop_receiver(self) -> None:
        if self._receiver is not None:
            self._receiver.release()
            self._receiver = None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"unknown message type or missing field {text}"
    return text[:110]
