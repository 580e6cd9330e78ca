"""A loopback TCP proxy the tests can cut, standing in for a proxy timeout or a network
blip: :meth:`TcpProxy.drop_all` closes every connection through it at once (both sides see
the connection end), while new connections are still accepted and forwarded; with
:attr:`TcpProxy.down` set, the target is unreachable: new connections are closed at once
(a service that is down, whose data survives for when it is back)."""
from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``, one thread per direction."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.accepted = 0
        #: refuse every connection (close it at once) while True
        self.down = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def drop_all(self) -> int:
        """Cut every open connection; returns how many sockets were open."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)
        return len(sockets)

    def go_down(self) -> None:
        """The target becomes unreachable: open connections are cut, new ones closed."""
        self.down = True
        self.drop_all()

    def close(self) -> None:
        self.listener.close()
        self.drop_all()
