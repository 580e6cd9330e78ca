"""Which worker of this host owns a session, and whether a websocket should go there.

With several gunicorn workers a page and its websocket often reach different workers (each
connection is accepted by whichever worker wins it). The worker that built a session for
a page writes its own key into the session token; a worker that receives the websocket
for a session it does not hold hands the connection to that owner (passing the socket, see
:mod:`blueprints.handover`), so the document is built once and the page meets the
document it was rendered from. When the owner is gone (restarted, killed, on another host)
the receiving worker rebuilds the session from the token, as before.

A worker key is ``<group>.<pid>``. The group names one gunicorn master on one boot of one
host (the kernel's boot id, the master's pid and its start time), so keys never match a
worker of another server, another host, or an earlier master that had the same pid. Nothing
in a key is secret: it says which process, as a ``Server`` header would.

This module decides; it does no I/O beyond reading ``/proc`` once per worker.
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


def socket_name(key: str) -> bytes:
    """The abstract Unix socket a worker listens on for handed connections (Linux's
    abstract namespace: it vanishes with the process, no file to clean up)."""
    return b"\0bokeh-flask-handover-" + key.encode("ascii")


def draining_name(key: str) -> bytes:
    """The abstract name a draining worker holds instead (see :func:`sibling_states`)."""
    return b"\0bokeh-flask-draining-" + key.encode("ascii")


def sibling_states(group: str, pids: list[int]) -> dict[int, str]:
    """What the workers ``pids`` of ``group`` are doing, from the abstract sockets they hold
    (``/proc/net/unix``): ``ready`` (serving, listening for handovers), ``draining``, or
    ``booting`` (holding neither yet)."""
    states = {pid: "booting" for pid in pids}
    try:
        with open("/proc/net/unix", encoding="ascii", errors="replace") as file:
            names = [line.rsplit(None, 1)[-1] for line in file if "@bokeh-flask-" in line]
    except OSError:
        return states
    for name in names:
        kind, _, key = name[len("@bokeh-flask-"):].partition("-")
        owner_group, _, pid = key.rpartition(".")
        if owner_group == group and pid.isdigit() and int(pid) in states:
            if kind == "handover" and states[int(pid)] == "booting":
                states[int(pid)] = "ready"
            elif kind == "draining":
                states[int(pid)] = "draining"
    return states


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
