"""Which worker of this host owns a session, and whether a websocket should go there.

With several gunicorn workers a page and its websocket often reach different workers (each
connection is accepted by whichever worker wins it). The worker that built a session for
a page writes its own key into the session token; a worker that receives the websocket
for a session it does not hold hands the connection to that owner (passing the socket, see
:mod:`blueprints.websocket.descriptor_passing`), so the document is built once and the page meets the
document it was rendered from. When the owner is gone (restarted, killed, on another host)
the receiving worker rebuilds the session from the token, as before.

A worker key is ``<group>.<pid>``. The group names one gunicorn master on one boot of one
host (the kernel's boot id, the master's pid and its start time), so keys never match a
worker of another server, another host, or an earlier master that had the same pid. Nothing
in a key is secret: it says which process, as a ``Server`` header would.

A connection carries the client's cookies and token, so it goes only to a proven sibling.
Each worker listens on a Unix socket in the server's private directory (:mod:`..config.state_dir`,
mode 0700, so no other user can bind or reach the name, unlike Linux's abstract names),
and the sender checks the listener's credentials (``SO_PEERCRED``) before sending anything
(:func:`peer_problem`): this user, the very pid the key names, a child of the sender's own
master. The receiver checks its sender the same way.

This module decides; it does no I/O beyond reading ``/proc``.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Mapping

#: The token payload key holding the owner's worker key.
OWNER_KEY = "bokeh_flask_worker"


def group_of_master(master_pid: int) -> str | None:
    """The group id of a gunicorn master's workers, or None where it cannot be told
    (not Linux): then no handover happens and sessions rebuild from tokens."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            boot_id = file.read().strip()
        with open(f"/proc/{master_pid}/stat", encoding="ascii", errors="replace") as file:
            # field 22 (start time) after the command name, which may contain spaces
            start_time = file.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
    digest = hashlib.sha256(f"{boot_id}:{master_pid}:{start_time}".encode()).hexdigest()
    return digest[:16]


def worker_key(group: str, pid: int | None = None) -> str:
    return f"{group}.{pid if pid is not None else os.getpid()}"


#: The longest path a Unix socket can be bound to (``sun_path`` less its NUL).
MAX_SOCKET_PATH = 107
_SUFFIX = ".sock"


def socket_path(directory: str, key: str) -> str:
    """Where worker ``key`` listens for handed connections, in the private ``directory``."""
    return os.path.join(directory, f"handover-{key}{_SUFFIX}")


def draining_path(directory: str, key: str) -> str:
    """The socket a draining worker binds besides its listener (see :func:`sibling_states`)."""
    return os.path.join(directory, f"draining-{key}{_SUFFIX}")


def sibling_states(directory: str, group: str, pids: list[int]) -> dict[int, str]:
    """What the workers ``pids`` of ``group`` are doing, from the sockets they hold bound in
    ``directory`` (``/proc/net/unix`` lists bound sockets, so a dead worker's leftover file
    does not count): ``ready`` (listening for handovers), ``draining``, or ``booting``
    (holding neither yet)."""
    states = {pid: "booting" for pid in pids}
    inside = os.path.join(directory, "")
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as file:
            paths = [line.rsplit(None, 1)[-1] for line in file if inside in line]
    except OSError:
        return states
    for path in paths:
        name = path[len(inside):] if path.startswith(inside) else ""
        kind, _, key = name.removesuffix(_SUFFIX).partition("-")
        owner_group, _, pid = key.rpartition(".")
        if owner_group == group and pid.isdigit() and int(pid) in states:
            if kind == "handover" and states[int(pid)] == "booting":
                states[int(pid)] = "ready"
            elif kind == "draining":
                states[int(pid)] = "draining"
    return states


def parent_pid(pid: int) -> int | None:
    """The parent of process ``pid`` (None: gone, or not Linux). Other errors, such as a
    process out of descriptors, propagate: they say nothing about the peer."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            return int(file.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def peer_problem(expected_pid: int | None, peer_pid: int, peer_uid: int, master_pid: int) -> str | None:
    """Why the process at the other end of a handover socket is not a sibling worker of
    this one (None: it is). ``expected_pid`` is the pid the owner's key names (None when
    any sibling may be there: the receiving side); ``master_pid`` is this worker's master."""
    if peer_uid != os.geteuid():
        return f"it runs as uid {peer_uid}, not as this server's user"
    if expected_pid is not None and peer_pid != expected_pid:
        return f"it is process {peer_pid}, not worker {expected_pid}"
    if peer_pid == os.getpid() or parent_pid(peer_pid) != master_pid:
        return f"process {peer_pid} is not a worker of this server's master ({master_pid})"
    return None


def key_pid(key: str) -> int | None:
    """The pid a worker key names."""
    pid = key.rpartition(".")[2]
    return int(pid) if pid.isdigit() else None


def owner_to_hand_to(own_key: str | None, payload: Mapping[str, Any], session_is_here: bool) -> str | None:
    """The worker to hand a websocket to: the token's owner when it is another worker of
    this master and the session does not live here; else None (serve it here)."""
    owner = payload.get(OWNER_KEY)
    if own_key is None or session_is_here or not isinstance(owner, str) or owner == own_key:
        return None
    group, _, pid = owner.rpartition(".")
    if group != own_key.rpartition(".")[0] or not pid.isdigit():
        return None  # another server's or host's worker: rebuild from the token here
    return owner
