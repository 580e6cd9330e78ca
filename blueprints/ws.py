"""WSHandler: ``<prefix>/<app>/ws``, one websocket per connection speaking Bokeh's protocol.

Everything that can refuse a handshake is decided before the upgrade (``prepare``, run as
the blueprint's ``before_request``), so a refused client gets a plain HTTP answer: 400 for
a request that is not a Bokeh websocket handshake, 403 for a foreign origin or a bad or
expired token, a missing login, or a token or session of another user; 426 for a wrong
websocket version. Flask-Sock then completes the upgrade and calls :meth:`WSHandler.open`.

Writes: every frame of one Bokeh message is encoded with wsproto and written with one
``sendall`` under a gevent lock, so messages never interleave and no multi-frame reply
waits on Nagle's algorithm (TCP_NODELAY is also set). A peer that stops reading for
``WRITE_TIMEOUT`` seconds is dropped instead of holding its session's lock.
"""
from __future__ import annotations

import logging
import socket
from typing import Any

import gevent
from flask import Response, request
from gevent.lock import Semaphore
from simple_websocket import ConnectionClosed
from wsproto.events import CloseConnection, Message, Ping

from ..app import protocol_handler
from ..app.auth import AuthenticatedRequest
from ..app.connection import ServerConnection
from ..app.contexts import ApplicationContext
from ..app.errors import CLOSE_INTERNAL_ERROR, HTTPError, WebSocketClose
from ..app.frames import Frame
from ..app.requests import RequestInfo
from ..app.server import ServerCore
from ..app.tokens import TokenError

from .auth import AuthRequestHandler
from .views import error_response

log = logging.getLogger(__name__)

#: Seconds a peer may take to accept one message before it is dropped.
WRITE_TIMEOUT = 30.0
#: Size of each socket read: large reads make big buffers arrive in few steps.
RECEIVE_BYTES = 65536
#: Seconds a closing socket waits for the peer's side of the close.
LINGER_SECONDS = 2.0
#: TCP keep-alive: probe an idle peer after 60 s, every 10 s, give up after 6 misses, so a
#: peer that vanished without a FIN or RST is found in about two minutes. Bokeh's ping
#: frames keep proxies from timing out idle connections; a missing pong alone never
#: closes a connection, since bokeh.client answers pings only while its loop runs.
TCP_KEEPALIVE = (60, 10, 6)


class LockedSocket:
    """The websocket's socket as simple-websocket sees it after the handshake.

    simple-websocket's reader greenlet answers pings and close frames with its own
    ``sock.send``; routing that through our write lock keeps its frames from landing in
    the middle of a large message we are writing. ``close`` lingers: it half-closes and
    drains briefly, so a close frame we just sent (1009 after an oversized message, say)
    is not destroyed by a TCP reset over unread input.
    """

    def __init__(self, sock: socket.socket, lock: Semaphore) -> None:
        self.raw = sock
        self._lock = lock

    def send(self, data: bytes) -> int:
        with self._lock:
            self.raw.sendall(data)
        return len(data)

    def recv(self, size: int) -> bytes:
        return self.raw.recv(size)

    def close(self) -> None:
        try:
            self.raw.shutdown(socket.SHUT_WR)
            with gevent.Timeout(LINGER_SECONDS, False):
                while self.raw.recv(RECEIVE_BYTES):
                    pass
        except OSError:
            pass
        self.raw.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def parse_subprotocols(header: str | None) -> list[str]:
    """The offered values of ``Sec-WebSocket-Protocol`` (``bokeh, <token>`` from BokehJS)."""
    return [p.strip() for p in (header or "").split(",") if p.strip()]


class WSHandler(AuthRequestHandler):
    """One Bokeh websocket. Class and method names follow ``bokeh.server.views.ws``."""

    def __init__(self, core: ServerCore, application_context: ApplicationContext, ws: Any,
                 session_id: str, token: str, request_info: RequestInfo) -> None:
        self.core = core
        self.application_context = application_context
        self.ws = ws
        self.session_id = session_id
        self.token = token
        self.request_info = request_info
        self.write_lock = Semaphore(1)
        self.connection: ServerConnection | None = None
        self._closed = False
        self._last_ping: bytes | None = None

    # -- before the upgrade -------------------------------------------------------------

    @staticmethod
    def check_origin(core: ServerCore, origin: str | None) -> bool:
        allowed = core.origins.allows(origin or "", request.headers.get("Host"))
        if not allowed:
            log.warning(
                "Refusing websocket connection from Origin %r; allow it with "
                "--allow-websocket-origin=%s or BOKEH_ALLOW_WS_ORIGIN",
                origin, _netloc(origin or ""),
            )
        return allowed

    @staticmethod
    def select_subprotocol(subprotocols: list[str]) -> str | None:
        """Bokeh's rule: exactly ``bokeh`` then the token; ``bokeh`` is selected."""
        return "bokeh" if subprotocols[:1] == ["bokeh"] and len(subprotocols) == 2 else None

    @staticmethod
    def get_compression_options() -> None:
        """No permessage-deflate, as ``bokeh serve`` by default: compressing large binary
        buffers costs more CPU than it saves on the networks Bokeh apps run on."""
        return None

    @classmethod
    def prepare_upgrade(cls, core: ServerCore) -> Response | None:
        """Refuse a handshake with an HTTP answer before the upgrade; None lets it proceed."""
        core.ensure_started()
        try:
            if request.headers.get("Upgrade", "").lower() != "websocket":
                raise HTTPError(400, 'Can "Upgrade" only to "WebSocket".')
            if "upgrade" not in request.headers.get("Connection", "").lower():
                raise HTTPError(400, '"Connection" must be "Upgrade".')
            if request.headers.get("Sec-WebSocket-Version") != "13":
                response = error_response(HTTPError(426, "Upgrade Required"))
                response.headers["Sec-WebSocket-Version"] = "13"
                return response
            if not cls.check_origin(core, request.headers.get("Origin")):
                raise HTTPError(403, "Cross origin websockets not allowed")
            handler = cls.__new__(cls)
            handler.core = core
            early = handler.prepare()
            if early is not None:
                raise HTTPError(403, "Forbidden: no authenticated user")
            offered = parse_subprotocols(request.headers.get("Sec-WebSocket-Protocol"))
            if cls.select_subprotocol(offered) is None:
                raise HTTPError(400, "Subprotocol header is not 'bokeh, <token>'")
            token = offered[1]
            try:
                session_id, payload = core.tokens.verify(token, check_expiry=True)
            except TokenError as exc:
                log.info("Refusing websocket: %s", exc)
                raise HTTPError(403, f"Invalid session token: {exc}") from None
            # the login cookie comes with the handshake: the session must be this user's
            user = handler.user_identity
            context = core.application_context((request.view_args or {})["app_key"])
            core.check_session_user(context, session_id, payload, user)
        except HTTPError as error:
            return error_response(error)
        request.environ["bokeh_flask.session"] = (session_id, token)
        request.environ["bokeh_flask.user"] = user
        # Compression is off (get_compression_options): hide the client's offer from
        # simple-websocket, which would otherwise always accept permessage-deflate.
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return None

    # -- after the upgrade --------------------------------------------------------------

    @classmethod
    def serve(cls, core: ServerCore, ws: Any, app_key: str) -> None:
        """Flask-Sock's view body: run one connection until it closes."""
        session_id, token = request.environ["bokeh_flask.session"]
        info = AuthenticatedRequest.from_environ(request.environ)
        info.user = request.environ["bokeh_flask.user"]
        handler = cls(core, core.application_context(app_key), ws, session_id, token, info)
        handler.run()

    def run(self) -> None:
        try:
            self.open()
            while not self._closed:
                fragment = self.ws.receive()
                if fragment is None:
                    break
                self.on_message(fragment)
        except ConnectionClosed:
            pass
        except WebSocketClose as close:
            log.info("closing websocket: %s (%d)", close.reason, close.code)
            self.close(close.code, close.reason)
        except Exception:
            log.exception("websocket handler failed")
            self.close(CLOSE_INTERNAL_ERROR, "internal server error")
        finally:
            self.on_close()

    def open(self) -> None:
        raw = self.ws.sock
        self.ws.sock = LockedSocket(raw, self.write_lock)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            idle, interval, count = TCP_KEEPALIVE
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
        except (OSError, AttributeError):
            pass
        self.connection = self.core.open_connection(
            self.application_context, self.session_id, self.token, self.request_info, self)

    def on_message(self, fragment: str | bytes) -> None:
        assert self.connection is not None
        message = self.connection.receive_fragment(fragment)
        if message is not None:
            protocol_handler.handle(self.connection, message)

    def on_pong(self, payload: bytes) -> None:
        if self.connection is not None:
            self.connection.on_pong(payload)

    def on_close(self) -> None:
        self._closed = True
        if self.connection is not None:
            self.core.close_connection(self.connection)
        # let simple-websocket's reader finish the closing handshake before the server
        # closes the socket under it
        self.ws.thread.join(timeout=LINGER_SECONDS + 1)

    # -- the Transport the core writes through ----------------------------------------

    def send_message(self, message: Any) -> None:
        assert self.connection is not None
        self.connection.send_message(message)

    def write_frames(self, frames: list[Frame]) -> bool:
        return self.write_message(*(Message(data=frame) for frame in frames))

    def write_message(self, *events: Any) -> bool:
        """Encode wsproto events and write them in one piece under the write lock.

        Returns False when the peer is gone.
        """
        if self._closed or not self.ws.connected:
            return False
        with self.write_lock:
            data = b"".join(self.ws.ws.send(event) for event in events)
            try:
                with gevent.Timeout(WRITE_TIMEOUT):
                    self.ws.sock.raw.sendall(data)
                return True
            except (OSError, gevent.Timeout):
                log.info("dropping websocket: peer stopped reading")
                self._abort()
                return False

    def ping(self, payload: bytes) -> None:
        """Send a keep-alive ping (dead peers are found by TCP keep-alive, see TCP_KEEPALIVE).

        simple-websocket consumes pongs itself and only records that one arrived, so the
        previous ping's pong is noticed here, at the next ping.
        """
        if self._last_ping is not None and self.ws.pong_received:
            self.on_pong(self._last_ping)
        self.ws.pong_received = False
        self._last_ping = payload
        self.write_message(Ping(payload=payload))

    def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self.ws.connected:
            try:
                with self.write_lock, gevent.Timeout(5):
                    self.ws.sock.raw.sendall(self.ws.ws.send(CloseConnection(code=code, reason=reason)))
            except Exception:
                pass
            self.ws.connected = False
        if self.connection is not None:
            self.core.close_connection(self.connection)

    def _abort(self) -> None:
        self._closed = True
        self.ws.connected = False
        try:
            self.ws.sock.raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.connection is not None:
            self.core.close_connection(self.connection)


def _netloc(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/") or origin
