"""The socket under a websocket: what replaces simple-websocket's reader, leaving
gunicorn's request behind, and writing many buffers in one system call.

Split from :mod:`.ws_handler` (the handler and its protocol) so each stays one job.
"""
from __future__ import annotations

import socket
import ssl
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Callable

from wsproto.connection import Connection

from ...app.sessions.frames import Chunk

if TYPE_CHECKING:
    from simple_websocket import Server

#: Buffers per ``sendmsg`` call (Linux's IOV_MAX).
IOV_MAX = 1024

class NoReaderThread:
    """Stands in for simple-websocket's reader thread (``thread_class`` in
    ``SOCK_SERVER_OPTIONS``): :meth:`WSHandler.run` reads the socket itself, so a
    websocket costs one greenlet instead of two plus a Condition."""

    name = "bokeh-flask websocket"

    def __init__(self, target: Callable[..., object] | None = None, **kwargs: object) -> None:
        pass

    def start(self) -> None:
        pass


class NoEvent:
    """simple-websocket's ``event_class``: it wakes readers of ``Server.receive``, which
    nothing calls here (see :class:`NoReaderThread`)."""


def close_parser(protocol: Connection) -> None:
    """Close wsproto's frame parser, a generator whose frame refers back to the parser
    object: left alone, that cycle (about 17 objects per websocket) waits for a full
    collection and meanwhile pins the memory pages of everything allocated around it.
    Nothing reads frames after this (a closed generator yields no more)."""
    parser = getattr(getattr(protocol, "_proto", None), "_parse_more", None)
    if parser is not None:
        parser.close()


def detach(ws: Server) -> socket.socket | None:
    """A duplicate of a gunicorn websocket's socket, for a handler greenlet of its own.

    The request's greenlet would otherwise hold, for the websocket's whole life, gunicorn's
    parser and environ, Flask's request context and the saved stack of the WSGI call: a
    large share of an idle websocket's memory. Once the view returns, gunicorn closes its
    descriptor and frees its pool slot (``worker_connections`` then counts requests in
    flight, not open websockets); the duplicate keeps the connection open. None where
    that cannot work: ``flask run`` writes a response after the view, a TLS socket's state
    cannot be duplicated, and a process out of descriptors keeps the request's greenlet.
    """
    sock = ws.sock
    if ws.mode != "gunicorn" or sock is None or isinstance(sock, ssl.SSLSocket):
        return None
    try:
        return sock.dup()
    except OSError:
        return None


def send_chunks(sock: socket.socket, chunks: list[Chunk]) -> None:
    """Write ``chunks`` in order without joining them: ``sendmsg`` hands the kernel a
    list of buffers (resumed after partial writes); TLS sockets, which lack it, get
    one ``sendall`` per chunk."""
    if len(chunks) == 1:
        sock.sendall(chunks[0])
        return
    queue = deque(chunks)
    while queue:
        try:
            sent = sock.sendmsg(list(islice(queue, IOV_MAX)))
        except NotImplementedError:
            for chunk in queue:
                sock.sendall(chunk)
            return
        while sent:
            head = queue[0]
            if sent >= len(head):
                sent -= len(head)
                queue.popleft()
            else:
                queue[0] = memoryview(head)[sent:]
                sent = 0
