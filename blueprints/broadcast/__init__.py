"""``bokeh_flask.broadcast``: a value for every session of an app, on every worker and host.

``on_broadcast(app_path, name)`` registers ``handler(doc, value)`` in a process;
``broadcast(app_path, name, value)`` (a Flask route, a background greenlet or thread, an
app's own callback) sends ``value`` as JSON to every worker of every host, where each
runs the handler for each of its sessions of the app under the session's lock. What a
broadcast means is the core's (:mod:`bokeh_flask.app.sessions.broadcasts`); the bytes
travel through :mod:`.channels`.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from ...app.sessions.broadcasts import BroadcastError, Handler, on_broadcast
from .channels import Channels

if TYPE_CHECKING:
    from ...app.config.settings import Settings
    from ...app.sessions.server import ServerCore

__all__ = ["BroadcastError", "Handler", "broadcast", "channel_for", "on_broadcast", "register_core"]

#: The cores of this process (one per ``BokehServer`` registration), for :func:`broadcast`.
_cores: weakref.WeakSet[ServerCore] = weakref.WeakSet()


def channel_for(settings: Settings) -> Channels:
    """The channel a core's broadcasts travel on (Redis with ``--redis-url``, else the host's)."""
    return Channels(settings)


def register_core(core: ServerCore) -> None:
    _cores.add(core)


def broadcast(app_path: str, name: str, value: Any) -> int:
    """Run the handler registered with ``on_broadcast(app_path, name)`` as
    ``handler(doc, value)`` for every session of the app on every worker and every host;
    ``value`` travels as JSON. Returns once this worker's sessions have run it, with the
    count that did (the other workers' run as the value reaches them, within ~50 ms on a
    host, or as Redis delivers it). Raises :class:`BroadcastError` when no server in this
    process serves ``app_path`` or the value is not JSON (or over 4 MiB as JSON)."""
    cores = [core for core in list(_cores) if app_path in core.applications]
    if not cores:
        served = sorted({key for core in list(_cores) for key in core.applications})
        raise BroadcastError(f"Application {app_path} does not exist on this server (its apps: {', '.join(served)})")
    return sum(core.broadcast(app_path, name, value) for core in cores)
