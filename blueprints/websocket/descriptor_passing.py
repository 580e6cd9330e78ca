"""Hand a websocket connection to the worker that owns its session (the transport side of
:mod:`app.runtime.handover`, which decides when).

Each gunicorn worker listens on a Unix socket named after its worker key, in the server's
private directory, from its start until its process exits (a draining worker answers
``-``). A worker that accepts a websocket handshake for a session another worker owns,
once every check that can refuse it has passed, connects to the owner's socket, proves
that the listener is that sibling (:func:`app.runtime.handover.peer_problem`: a squatter gets
nothing, and the connection is served here), then sends it the connection's descriptor
(``SCM_RIGHTS``) with the request head it has read. The owner runs that request through
its own gunicorn handler, as if it had accepted the connection itself: the checks run again
there, then the upgrade, and the websocket meets the session the page was rendered from.

One exchange per handed connection, on a new Unix connection:

- sender to owner: a 4-byte length, the request head, the descriptor attached;
- owner to sender: ``+`` (it serves the connection now) or ``-`` (it will not: draining,
  out of descriptors, no descriptor arrived, a head too large), then it closes the Unix
  connection. An owner out of descriptors still answers at once: it keeps one in reserve.

On ``+`` the sender lets its copy go without a response. On ``-``, or when the Unix
connection ends without an answer (the owner exited, or failed before serving, having
closed its copy), the sender serves the websocket itself, rebuilding the session from the
token; so does a sender that cannot connect (the owner is gone). A sender that hears
nothing within :data:`HANDOVER_TIMEOUT` (an owner busy in a long callback) lets its copy go
too: the owner serves the connection once it is free, with the session's own document. So
exactly one worker serves each connection, and a session is built again only when its
owner cannot have it.
"""
from __future__ import annotations

import array
import errno
import logging
import os
import socket
import ssl
import stat
import struct
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import gevent
from flask import Response
from gevent.socket import wait_read

from ...app.config import state_dir
from ...app.process.gunicorn_config import EXHAUSTION_REPORT_INTERVAL
from ...app.runtime import handover
from ...app.sessions.tokens import short_id

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ...app.sessions.server import ServerCore

log = logging.getLogger(__name__)

#: Seconds a sender waits for the owner's answer before letting the connection go to it
#: (a busy owner serves it once free); also the owner's limit for reading a handover.
HANDOVER_TIMEOUT = 1.0
#: Largest request head handed over (gunicorn's own limits keep heads far below this).
MAX_HEAD = 1 << 20
_LENGTH = struct.Struct("!I")
_CREDENTIALS = struct.Struct("3i")
_last_refusal_warning = -EXHAUSTION_REPORT_INTERVAL
#: The private directory this worker's siblings listen in (set by :func:`start`).
_directory: str | None = None


class HandedOver(Response):
    """What a view returns once its connection went to another worker: nothing is written,
    and gunicorn closes this worker's copy of the socket (as after a websocket)."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raise StopIteration()


def start(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` part: listen for handed connections when the worker
    serves bokeh-flask apps on Linux, in the server's private directory."""
    global _directory
    cores = _cores(worker)
    group = handover.group_of_master(worker.ppid) if cores else None
    if group is None or worker.cfg.is_ssl:
        return
    key = handover.worker_key(group)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        directory = state_dir.prepare(cores[0].settings.state_dir)
        path = handover.socket_path(directory, key)
        if len(path.encode()) > handover.MAX_SOCKET_PATH:
            raise OSError(f"{path} is longer than a Unix socket path may be; choose a shorter --state-dir")
        state_dir.remove_if_present(path)  # a file left by an exited worker that had this pid
        listener.bind(path)
        listener.listen(128)
    except (OSError, state_dir.PrivateDirError) as exc:
        log.warning("websockets will not be handed between workers: %s", exc)
        listener.close()
        return
    _directory = directory
    for core in cores:
        core.accept_handovers(key)
    worker.bokeh_flask_handover = (key, listener, gevent.spawn(_accept, listener, worker))


def stop(worker: Any) -> None:
    """A draining worker takes no more handed connections (it answers ``-``: their senders
    rebuild the session) but keeps its name until it exits, and binds a ``draining`` socket
    so its siblings can tell it from a booting one."""
    key, _, _ = getattr(worker, "bokeh_flask_handover", (None, None, None))
    if key is None or _directory is None:
        return
    marker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        marker.bind(handover.draining_path(_directory, key))
        worker.bokeh_flask_draining = marker
    except OSError:
        marker.close()


def listening_directory() -> str | None:
    """The private directory this worker and its siblings listen in (None: no handover)."""
    return _directory


def hand_over(owner: str, environ: Mapping[str, Any], session_id: str) -> bool:
    """Send this request's connection to worker ``owner``; False if it did not take it
    (then serve it here)."""
    client = environ.get("gunicorn.socket")
    if client is None or isinstance(client, ssl.SSLSocket) or _directory is None:
        return False
    head = request_head(environ)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(HANDOVER_TIMEOUT)
        conn.connect(handover.socket_path(_directory, owner))
        problem = _peer_problem(conn, handover.key_pid(owner))
        if problem is not None:
            log.warning("session %s: not handing its websocket to the socket of worker %s: %s; "
                        "serving it here, rebuilt from the token", short_id(session_id), owner, problem)
            return False
        message = _LENGTH.pack(len(head)) + head
        sent = conn.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                         array.array("i", [client.fileno()]))])
        conn.sendall(message[sent:])
        try:
            answer = conn.recv(1)
        except socket.timeout:  # busy: it holds the descriptor and serves it when free
            log.debug("session %s: websocket handed to busy worker %s", short_id(session_id), owner)
            return True
        if answer != b"+":
            raise ConnectionError("the owner refused the connection" if answer else "the owner closed it")
    except (OSError, ConnectionError) as exc:
        log.debug("session %s: its worker %s did not take the websocket (%s); rebuilding it "
                  "here from the token", short_id(session_id), owner, exc)
        return False
    finally:
        conn.close()
    log.debug("session %s: websocket handed to worker %s", short_id(session_id), owner)
    return True


def _peer_problem(conn: socket.socket, expected_pid: int | None) -> str | None:
    """Why the process at the other end of ``conn`` is not a sibling worker (None: it is)."""
    pid, uid, _ = _CREDENTIALS.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size))
    return handover.peer_problem(expected_pid, pid, uid, os.getppid())


def request_head(environ: Mapping[str, Any]) -> bytes:
    """The HTTP request head as the client sent it (header names normalised), rebuilt
    from gunicorn's environ."""
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
    lines = [f"{environ['REQUEST_METHOD']} {target} {environ.get('SERVER_PROTOCOL', 'HTTP/1.1')}"]
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            lines.append(f"{key[5:].replace('_', '-').title()}: {value}")
    for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(key):
            lines.append(f"{name}: {environ[key]}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _accept(listener: socket.socket, worker: Any) -> None:
    reserve = _open_reserve()
    while True:
        wait_read(listener.fileno())  # a sender is waiting: accept without yielding
        try:
            conn, _ = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE) and reserve is not None:
                reserve = _refuse_one(listener, reserve)
            else:
                log.debug("handover listener: %s", exc)
                gevent.sleep(0.1)
            continue
        gevent.spawn(_receive, conn, worker)


def _open_reserve() -> int | None:
    """A descriptor held in reserve, so a worker out of descriptors can still answer a
    sender ``-`` at once (it rebuilds the session) instead of leaving it waiting."""
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _refuse_one(listener: socket.socket, reserve: int) -> int | None:
    """Out of descriptors: spend the reserve on one pending sender and refuse it (the
    descriptor it sent is dropped with the Unix connection), then take the reserve back."""
    os.close(reserve)
    try:
        conn, _ = listener.accept()
    except OSError:
        return _open_reserve()
    try:
        conn.sendall(b"-")
    except OSError:
        pass
    finally:
        conn.close()
    _warn_out_of_descriptors()
    return _open_reserve()


def _warn_out_of_descriptors() -> None:
    """One line at most as often as the worker's own out-of-descriptors report, while handed
    connections are refused for want of descriptors."""
    global _last_refusal_warning
    if time.monotonic() - _last_refusal_warning >= EXHAUSTION_REPORT_INTERVAL:
        _last_refusal_warning = time.monotonic()
        log.warning("worker %d is out of file descriptors: websockets handed to it are served "
                    "by the workers that received them (raise the open-files limit)", os.getpid())


def _receive(conn: socket.socket, worker: Any) -> None:
    """Take one handed connection and serve it with the worker's own request handler.
    Every descriptor that arrives is closed on every path but the one that serves it."""
    fds: list[int] = []
    client: socket.socket | None = None
    try:
        conn.settimeout(HANDOVER_TIMEOUT)
        data, ancdata, flags, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
        fds = _descriptors(ancdata)  # closed below unless served, whoever sent them
        try:
            problem = _peer_problem(conn, None)
        except OSError as exc:  # no descriptor left to read /proc with: the sender rebuilds
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                _warn_out_of_descriptors()
            conn.sendall(b"-")
            return
        if problem is not None:
            log.warning("refused a handed connection: %s", problem)
            return
        if flags & socket.MSG_CTRUNC:  # a descriptor could not be installed here
            _warn_out_of_descriptors()
        elif len(fds) == 1:
            client = _socket_of(fds[0])
            if client is not None:
                fds = []  # the socket object owns the descriptor now
        if client is None or len(data) < _LENGTH.size:
            conn.sendall(b"-")
            return
        length = _LENGTH.unpack_from(data)[0]
        head = bytearray(data[_LENGTH.size:])
        while len(head) < length <= MAX_HEAD:
            chunk = conn.recv(min(65536, length - len(head)))
            if not chunk:
                return
            head += chunk
        if length > MAX_HEAD or any(core.draining for core in _cores(worker)):
            conn.sendall(b"-")  # a draining worker takes no session: the sender rebuilds it
            return
        try:
            conn.sendall(b"+")
        except OSError:  # the sender gave up waiting and let its copy go: serve it anyway
            pass
        served, client = client, None
    except OSError:
        return
    finally:
        conn.close()
        for fd in fds:
            os.close(fd)
        if client is not None:
            client.close()
    try:
        address = served.getpeername()
    except OSError:
        served.close()
        return
    worker.handle(worker.sockets[0], _Prefixed(served, bytes(head)), address)


def _socket_of(fd: int) -> socket.socket | None:
    """A socket object for a received descriptor of a stream socket (TCP, or Unix for a
    server on ``--unix-socket``); None, the descriptor still the caller's to close, for
    anything else: a file, a pipe, a datagram socket."""
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        sock.detach()
        return None
    return sock


def _cores(worker: Any) -> list[ServerCore]:
    return list(getattr(worker.wsgi, "extensions", {}).get("bokeh_flask", {}).values())


def _descriptors(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return list(fds)


class _Prefixed:
    """A socket whose first reads return the request head another worker already read."""

    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        self._sock = sock
        self._prefix = prefix

    def recv(self, size: int, *flags: int) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._sock.recv(size, *flags)

    def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0, *flags: int) -> int:
        if self._prefix:
            data = self.recv(nbytes or len(buffer))
            buffer[: len(data)] = data
            return len(data)
        return self._sock.recv_into(buffer, nbytes, *flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
