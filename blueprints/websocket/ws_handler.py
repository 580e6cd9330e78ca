"""WSHandler: ``<prefix>/<app>/ws``, one websocket per connection speaking Bokeh's protocol.

Everything that can refuse a handshake is decided before the upgrade (``prepare``, run as
the blueprint's ``before_request``), so a refused client gets a plain HTTP answer: 400 for
a request that is not a Bokeh websocket handshake or a token over the size limits, 403 for
a foreign origin or a bad or expired token, a missing login, or a token or session of
another user; 426 for a wrong websocket version. Flask-Sock then completes the upgrade
and calls :meth:`WSHandler.serve`.

After the upgrade one greenlet per websocket reads the socket and parses frames with
wsproto; simple-websocket's reader thread is replaced by a stand-in (:mod:`.ws_socket`).
Under gunicorn that greenlet is a new one on a duplicate of the socket and the request
itself ends (:func:`.ws_socket.detach`), so an idle websocket costs little more than its
socket and state. A websocket of a session another worker of the host owns is handed to
that worker before the upgrade (:mod:`.descriptor_passing`).

Writes: a message's frames are encoded by :func:`app.sessions.frames.wire_chunks` (large buffers
are not copied) and written with one ``sendmsg`` under a gevent lock, so messages never
interleave with each other or with pings and close frames, and no multi-frame reply waits
on Nagle's algorithm (TCP_NODELAY is also set). What the reading greenlet writes while it
handles a message (a PATCH-DOC the app's callback caused, then the OK) leaves in one
write. A peer that stops reading for ``WRITE_TIMEOUT`` seconds is dropped instead of
holding its session's lock. With permessage-deflate negotiated
(``--websocket-compression-level``), messages are compressed and framed by wsproto
instead (:mod:`.ws_compression`).
"""
from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

import gevent
from flask import Response, request
from gevent.lock import Semaphore
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

from ...app.auth.providers import AuthenticatedRequest
from ...app.config.origins import served_address
from ...app.sessions import protocol_handler
from ...app.sessions.connection import ServerConnection
from ...app.sessions.contexts import ApplicationContext
from ...app.sessions.errors import CLOSE_INTERNAL_ERROR, CLOSE_PROTOCOL_ERROR, HTTPError, WebSocketClose
from ...app.sessions.frames import Chunk, Frame, wire_chunks
from ...app.sessions.handshake import Admission, Handshake, Refusal, admit, parse_subprotocols
from ...app.sessions.requests import RequestInfo
from ...app.sessions.server import ServerCore
from ...app.sessions.tokens import EXPIRED, short_id
from ..auth.users import AuthRequestHandler, request_claims, require_user
from ..views import error_response
from . import descriptor_passing as handover
from .ws_compression import deflated_chunks, tuned_connection
from .ws_socket import close_parser, detach, send_chunks

if TYPE_CHECKING:
    from bokeh.protocol.message import Message
    from greenlet import greenlet
    from simple_websocket import Server

log = logging.getLogger(__name__)

#: Seconds a peer may take to accept one message before it is dropped.
WRITE_TIMEOUT = 30.0
#: Size of each socket read: large reads make big buffers arrive in few steps.
RECEIVE_BYTES = 65536
#: Seconds a closing socket waits for the peer's side of the close.
LINGER_SECONDS = 2.0
#: Seconds the close frame (and what is queued before it) may take to leave.
CLOSE_WRITE_TIMEOUT = 5.0
#: TCP keep-alive: probe an idle peer after 60 s, every 10 s, give up after 6 misses, so a
#: peer that vanished without a FIN or RST is found in about two minutes. Bokeh's ping
#: frames keep proxies from timing out idle connections; a missing pong alone never
#: closes a connection, since bokeh.client answers pings only while its loop runs.
TCP_KEEPALIVE = (60, 10, 6)


#: Where the handshake's :class:`Admission` waits for :meth:`WSHandler.serve`, in the
#: request's environ (the upgrade happens between the two, inside Flask-Sock).
ADMISSION_KEY = "bokeh_flask.admission"


class WSHandler(AuthRequestHandler):
    """One Bokeh websocket. Class and method names follow ``bokeh.server.views.ws``."""

    def __init__(self, core: ServerCore, application_context: ApplicationContext, sock: socket.socket,
                 protocol: Connection, session_id: str, token: str, request_info: RequestInfo, *,
                 max_message_size: int | None = None, receive_bytes: int = RECEIVE_BYTES,
                 token_expired: bool = False, deflate: bool = False,
                 payload: dict[str, Any] | None = None) -> None:
        self.core = core
        self.application_context = application_context
        self.sock = sock
        #: wsproto's state machine, past the handshake: parses frames, encodes control frames
        self.protocol = protocol
        self.session_id = session_id
        self.token = token
        #: an expired token may re-attach to its live session, never build a new one
        self.token_expired = token_expired
        self.payload = payload
        #: the handshake's request, until :meth:`open` hands it to the core
        self.handshake_request: RequestInfo | None = request_info
        self.max_message_size = max_message_size
        self.receive_bytes = receive_bytes
        #: permessage-deflate was negotiated: messages go out through ``protocol``
        self.deflate = deflate
        self.write_lock = Semaphore(1)
        self.connection: ServerConnection | None = None
        self._closed = False
        #: (code, reason, sent by the peer) once closed; 1006: the connection just ended
        self._close_code: tuple[int | None, str, bool] = (1006, "", True)
        #: wire chunks written but not yet sent, in write order (see :meth:`_flush`)
        self._pending: list[Chunk] = []
        #: the greenlet handling a message, whose writes wait for the end of it
        self._collector: greenlet | None = None
        self._incoming: list[str | bytes] = []
        self._incoming_size = 0

    # -- before the upgrade -------------------------------------------------------------

    @staticmethod
    def get_compression_options(core: ServerCore) -> tuple[int, int] | None:
        """permessage-deflate's zlib (level, memory level), or None: off by default, as
        in ``bokeh serve``, since compressing large binary buffers costs more CPU than it
        saves on the networks Bokeh apps run on."""
        return core.settings.websocket_compression

    @classmethod
    def prepare_upgrade(cls, core: ServerCore) -> Response | None:
        """Refuse a handshake with an HTTP answer before the upgrade (every check is
        :func:`app.sessions.handshake.admit`); None lets it proceed, with the admission
        kept for :meth:`serve`. A session another worker owns is handed to it here."""
        core.ensure_started()
        headers = request.headers
        handshake = Handshake(
            app_key=(request.view_args or {})["app_key"], upgrade=headers.get("Upgrade", ""),
            connection=headers.get("Connection", ""), version=headers.get("Sec-WebSocket-Version"),
            origin=headers.get("Origin"), host=headers.get("Host"), served=served_address(request.environ),
            subprotocols=parse_subprotocols(headers.get("Sec-WebSocket-Protocol")))
        try:
            admission = admit(core, handshake, lambda: require_user(core, handshake.app_key))
            if admission.owner is not None:
                if handover.hand_over(admission.owner, request.environ, admission.session_id):
                    return handover.HandedOver()
                if admission.expired:  # only its owner could re-attach it, and the owner is gone
                    log.info("Refusing websocket: %s", EXPIRED)
                    raise Refusal("expired", 403, f"Invalid session token: {EXPIRED}")
        except Refusal as refusal:
            core.metrics.websocket_refused(refusal.why)
            return error_response(refusal)
        except HTTPError as error:
            return error_response(error)
        request.environ[ADMISSION_KEY] = admission
        if cls.get_compression_options(core) is None:
            # hide the client's offer from simple-websocket, which would otherwise always
            # accept permessage-deflate
            request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return None

    # -- after the upgrade --------------------------------------------------------------

    @classmethod
    def serve(cls, core: ServerCore, ws: Server, app_key: str) -> None:
        """Flask-Sock's view body: hand the upgraded connection to its handler.

        Flask-Sock's ``Server`` has done the handshake; from here the handler owns the
        socket and wsproto connection. The ``Server`` is left marked closed (Flask-Sock
        sends nothing after us) and without its environ, handshake state (an h11
        connection) and reader stand-in (a cycle through its bound method). Under gunicorn
        the handler runs in a greenlet of its own on a duplicate of the socket
        (:func:`.ws_socket.detach`), and this request ends.
        """
        admission = request.environ[ADMISSION_KEY]
        assert isinstance(admission, Admission)
        info = AuthenticatedRequest.from_environ(request.environ)
        info.user = admission.user
        info.claims = request_claims(core) if admission.user is not None else None
        detached = detach(ws)
        protocol, sock = ws.ws.connection, detached or ws.sock
        assert protocol is not None and sock is not None  # the handshake is done
        compression = cls.get_compression_options(core)
        tuned = tuned_connection(protocol, *compression, ws.max_message_size) if compression else None
        if tuned is not None:
            close_parser(protocol)
            protocol = tuned
        handler = cls(core, admission.context, sock, protocol,
                      admission.session_id, admission.token, info, max_message_size=ws.max_message_size,
                      receive_bytes=ws.receive_bytes, token_expired=admission.expired, deflate=tuned is not None,
                      payload=admission.payload)
        # the finished Server lets go of what it held; its stubs type these as always set
        ws.environ = ws.ws = ws.sock = ws.thread = None  # type: ignore[assignment]
        ws.connected = False
        if detached is None:
            handler.run()
        else:
            gevent.spawn_raw(handler.run)  # a bare greenlet: nothing joins or kills it

    def run(self) -> None:
        """Read frames in this greenlet until the websocket closes, then close the socket."""
        try:
            self.open()
            while not self._closed:
                data = self.sock.recv(self.receive_bytes)
                if not data:
                    break
                self.protocol.receive_data(data)
                for event in self.protocol.events():
                    self._on_event(event)
                    if self._closed:
                        break
        except OSError:
            pass
        except WebSocketClose as close:  # on_close logs its code and reason
            if close.code in (CLOSE_PROTOCOL_ERROR, CloseReason.MESSAGE_TOO_BIG):
                self.application_context.metrics.error("protocol")
            self.close(close.code, close.reason)
        except Exception:
            log.exception("websocket handler failed")
            self.application_context.metrics.error("websocket")
            self.close(CLOSE_INTERNAL_ERROR, "internal server error")
        finally:
            self.on_close()
            self._close_socket()

    def open(self) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            idle, interval, count = TCP_KEEPALIVE
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
        except (OSError, AttributeError):
            pass
        request_info = self.handshake_request
        assert request_info is not None, "open() runs once"
        self.connection = self.core.open_connection(
            self.application_context, self.session_id, self.token, request_info, self,
            create=not self.token_expired, payload=self.payload)
        self.handshake_request = None  # a session created here keeps its own reference
        log.info("WebSocket connection opened: app %s, session %s", self.application_context.url,
                 short_id(self.session_id))

    def _on_event(self, event: Event) -> None:
        """One wsproto event: control frames are answered here, data frames assembled
        into whole websocket messages (at most ``max_message_size`` long, else 1009)."""
        if isinstance(event, (TextMessage, BytesMessage)):
            data = event.data
            if isinstance(data, bytearray):  # wsproto's type allows it; its frames carry bytes
                data = bytes(data)
            self._incoming.append(data)
            self._incoming_size += len(data)
            if self.max_message_size and self._incoming_size > self.max_message_size:
                raise WebSocketClose(CloseReason.MESSAGE_TOO_BIG, "Message is too big")
            if event.message_finished:
                parts, self._incoming, self._incoming_size = self._incoming, [], 0
                # a message's fragments are all of its own type (continuation frames keep it)
                if len(parts) == 1:
                    self.on_message(parts[0])
                elif isinstance(event, TextMessage):
                    self.on_message("".join(part for part in parts if isinstance(part, str)))
                else:
                    self.on_message(b"".join(part for part in parts if isinstance(part, bytes)))
        elif isinstance(event, Ping):
            self._write_control(event.response())
        elif isinstance(event, Pong):
            self.on_pong(event.payload)
        elif isinstance(event, CloseConnection):
            # the peer's close (answered with its code), or wsproto's verdict on a
            # malformed frame (1002, 1007)
            self.close(event.code, event.reason or "", by_peer=True)

    def on_message(self, fragment: str | bytes) -> None:
        """Handle one websocket message. What this greenlet writes meanwhile (the reply,
        and PATCH-DOCs the app's callbacks caused) leaves in one socket write at the end."""
        assert self.connection is not None
        self._collector = gevent.getcurrent()
        try:
            message = self.connection.receive_fragment(fragment)
            if message is not None:
                protocol_handler.handle(self.connection, message)
        finally:
            self._collector = None
            self._flush()

    def on_pong(self, payload: bytes) -> None:
        if self.connection is not None:
            self.connection.on_pong(payload)

    def on_close(self) -> None:
        self._closed = True
        code, reason, by_peer = self._close_code
        log.info("WebSocket connection closed%s: code=%s, reason=%r (app %s, session %s)",
                 " by the client" if by_peer else "", code, reason, self.application_context.url,
                 short_id(self.session_id))
        if self.connection is not None:
            self.core.close_connection(self.connection)
            # the connection points back at us as its transport: drop our side of that
            # cycle so both are freed by reference counting, not by a full collection
            self.connection.release()
            self.connection = None
        close_parser(self.protocol)

    # -- the Transport the core writes through ----------------------------------------

    def send_message(self, message: Message[Any]) -> None:
        assert self.connection is not None
        self.connection.send_message(message)

    def write_frames(self, frames: list[Frame]) -> bool:
        """Queue one message's frames and write them, unless this greenlet is handling a
        message (then :meth:`on_message` writes them with its reply). Returns False when
        the peer is gone."""
        if self._closed:
            return False
        self._pending.extend(deflated_chunks(self.protocol, frames) if self.deflate else wire_chunks(frames))
        if self._collector is gevent.getcurrent():
            return True
        return self._flush()

    def ping(self, payload: bytes) -> None:
        """Send a keep-alive ping. A missing pong never closes the connection (dead peers
        are found by TCP keep-alive, see TCP_KEEPALIVE)."""
        self._write_control(Ping(payload=payload))

    def close(self, code: int, reason: str, by_peer: bool = False) -> None:
        """Send what is queued, then the close frame; the peer's answer is awaited by
        :meth:`_close_socket`."""
        if self._closed:
            return
        self._closed = True
        self._close_code = (int(code), reason, by_peer)  # wsproto's IntEnum prints as a name on 3.10
        try:
            with self.write_lock, gevent.Timeout(CLOSE_WRITE_TIMEOUT):
                chunks, self._pending = self._pending, []
                chunks.append(self.protocol.send(CloseConnection(code=code, reason=reason)))
                send_chunks(self.sock, chunks)
        except (OSError, gevent.Timeout, LocalProtocolError):
            pass
        if self.connection is not None:
            self.core.close_connection(self.connection)

    # -- writing ------------------------------------------------------------------------

    def _write_control(self, event: Event) -> None:
        if not self._closed:
            self._pending.append(self.protocol.send(event))
            self._flush()

    def _flush(self) -> bool:
        """Write everything queued, in the order it was queued, under the write lock (so
        no other greenlet's frames land inside a message). A peer that takes longer than
        WRITE_TIMEOUT is dropped."""
        with self.write_lock:
            if self._closed:
                return False  # a close() waiting for the lock sends what is queued
            chunks, self._pending = self._pending, []
            if not chunks:
                return True
            try:
                with gevent.Timeout(WRITE_TIMEOUT):
                    send_chunks(self.sock, chunks)
                return True
            except (OSError, gevent.Timeout):
                log.info("dropping websocket: peer stopped reading")
                self._abort()
                return False

    def _abort(self) -> None:
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.connection is not None:
            self.core.close_connection(self.connection)

    def _close_socket(self) -> None:
        """Half-close, then drain for up to LINGER_SECONDS (the peer's close frame, data
        it sent before seeing ours) before closing: closing over unread input sends a TCP
        reset, and the peer would lose a close frame we just sent (1009, say)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            # gevent documents exception=False (the block ends quietly); its stubs do not allow it
            with gevent.Timeout(LINGER_SECONDS, False):  # type: ignore[arg-type]
                while self.sock.recv(self.receive_bytes):
                    pass
        except OSError:
            pass
        self.sock.close()
