"""The handover's decisions about its peers and what they send, without a server."""
from __future__ import annotations

import os
import socket

from bokeh_flask.app.runtime import handover
from bokeh_flask.blueprints.websocket.descriptor_passing import _socket_of


def test_only_the_named_sibling_of_the_same_master_passes():
    me, master = os.getpid(), os.getppid()
    sibling = os.fork()
    if sibling == 0:
        os.pause()
    try:
        # the parent plays the master here: the forked child is its "worker"
        assert handover.peer_problem(sibling, sibling, os.geteuid(), me) is None
        assert "uid 65534" in handover.peer_problem(sibling, sibling, 65534, me)
        assert f"not worker {sibling}" in handover.peer_problem(sibling, me, os.geteuid(), me)
        assert "not a worker of this server's master" in handover.peer_problem(None, sibling, os.geteuid(), master)
        assert "not a worker" in handover.peer_problem(None, me, os.geteuid(), master)  # never itself
    finally:
        os.kill(sibling, 9)
        os.waitpid(sibling, 0)
    assert "not a worker" in handover.peer_problem(sibling, sibling, os.geteuid(), me)  # gone


def test_only_stream_sockets_become_connections_and_other_descriptors_stay_to_be_closed():
    reader, writer = os.pipe()
    datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        for fd in (reader, datagram.fileno()):
            assert _socket_of(fd) is None
            os.fstat(fd)  # still open: the caller closes it
        served = _socket_of(stream.detach())
        assert served is not None and served.type == socket.SOCK_STREAM
        served.close()
    finally:
        os.close(reader)
        os.close(writer)
        datagram.close()


def test_sibling_states_read_bound_sockets_in_the_private_directory(tmp_path):
    group, pid = "0123456789abcdef", os.getpid()
    key = handover.worker_key(group, pid)
    directory = str(tmp_path)
    assert handover.sibling_states(directory, group, [pid]) == {pid: "booting"}
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(handover.socket_path(directory, key))
    assert handover.sibling_states(directory, group, [pid]) == {pid: "ready"}
    marker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    marker.bind(handover.draining_path(directory, key))
    assert handover.sibling_states(directory, group, [pid]) == {pid: "draining"}
    listener.close()
    marker.close()
    assert handover.sibling_states(directory, group, [pid]) == {pid: "booting"}  # files left: not bound
    assert handover.sibling_states(directory, "another-group", [pid]) == {pid: "booting"}
