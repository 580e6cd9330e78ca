"""Another local user who squats the names a worker listens on for handed websockets.

:class:`Squatter` forks a child that drops to another uid (the tests run as root in CI, so
they can become ``nobody``) and then, for as long as it runs, tries every few milliseconds
to bind each name given: Linux abstract names (anyone can bind a free one) and filesystem
paths. Whatever connects to a name it holds is accepted and read, as a thief would: each
connection, its bytes and any descriptor passed with them are reported to the parent
through a pipe, and the thief answers ``+`` ("I serve it") to keep what it got.
"""
from __future__ import annotations

import array
import os
import select
import signal
import socket

import pytest

from tests.support.servers import IN_CI

#: The uid and gid of the other user (Debian's ``nobody``/``nogroup``).
OTHER_UID = 65534
OTHER_GID = 65534


def require_root() -> None:
    """Becoming another user needs root: skipped locally without it, a failure in CI."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("the attacker-side tests run as root in CI, to act as another local user")
        pytest.skip("needs root to act as another local user")


class Squatter:
    """A process of uid :data:`OTHER_UID` holding every name in ``names`` it can bind."""

    def __init__(self, names: list[bytes | str]) -> None:
        require_root()
        reader, writer = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into pytest
            try:
                os.close(reader)
                _squat(names, writer)
            finally:
                os._exit(0)
        os.close(writer)
        self._reader = reader
        self._report = b""
        self._read_until(b"ready\n")

    def _read_until(self, marker: bytes) -> None:
        while marker not in self._report:
            chunk = os.read(self._reader, 65536)
            if not chunk:
                raise AssertionError(f"the squatter exited early: {self._report!r}")
            self._report += chunk

    def stop(self) -> list[str]:
        """End the squatter; returns what it did: ``bound NAME`` and ``got N bytes, K fds``."""
        os.kill(self.pid, signal.SIGTERM)
        os.waitpid(self.pid, 0)
        while chunk := os.read(self._reader, 65536):
            self._report += chunk
        os.close(self._reader)
        return [line for line in self._report.decode().splitlines() if line != "ready"]


def _squat(names: list[bytes | str], report: int) -> None:
    os.setgroups([])
    os.setgid(OTHER_GID)
    os.setuid(OTHER_UID)
    assert os.geteuid() == OTHER_UID
    os.write(report, b"ready\n")
    held: dict[socket.socket, bytes | str] = {}
    while True:
        for name in names:
            if name in held.values():
                continue
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                listener.bind(name)
                listener.listen(64)
            except OSError:  # taken, or a directory this user cannot enter
                listener.close()
                continue
            held[listener] = name
            os.write(report, f"bound {name!r}\n".encode())
        ready, _, _ = select.select(list(held), [], [], 0.005)
        for listener in ready:
            conn, _ = listener.accept()
            conn.settimeout(1)
            try:
                data, ancdata, _, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(64))
                fds = array.array("i")
                for _, _, payload in ancdata:
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                conn.sendall(b"+")
            except OSError:
                data, fds = b"", array.array("i")
            os.write(report, f"got {len(data)} bytes, {len(fds)} fds from {held[listener]!r}\n".encode())
