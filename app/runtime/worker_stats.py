"""Each worker's live numbers, shared on this host for the admin page (``--admin``).

Every worker writes one small JSON file a second (:class:`StatsWriter`): its pid, per app
its sessions, websocket connections and message counters, its resident memory and the
time. The files live in one directory per gunicorn master inside the server's private
directory (:func:`prepare_dir`, named after the master's group id, see
:func:`handover.group_of_master`, so two servers on a host never mix), which the master
removes when it stops; a process no master prepared one for (``flask run``, a host's own
gunicorn) uses one of its own. Any worker's admin session
reads them all (:func:`read_workers`), so one page shows the whole host without Prometheus.

A file is replaced atomically (written aside, then ``os.replace``), so a reader never sees
half of one, and removed at the worker's exit; a reader skips files of processes no longer
alive (a killed worker's) and files not refreshed for :data:`STALE_AFTER` seconds.

This module stays import-light (no Flask, no Bokeh): the gunicorn master uses its hooks.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ..config import state_dir
from . import handover, memory

if TYPE_CHECKING:
    from ..sessions.connection import ServerConnection
    from ..sessions.contexts import ApplicationContext
    from .periodic import PeriodicCallback

log = logging.getLogger(__name__)

#: Where the master tells its workers which directory to write to.
STATS_DIR_ENV = "BOKEH_FLASK_STATS_DIR"
#: Seconds between two writes of a worker's file.
WRITE_INTERVAL = 1.0
#: A file not refreshed for this long belongs to a stuck or vanished worker: not shown.
STALE_AFTER = 10.0

#: The directory this process (a gunicorn master) made, to remove at its exit.
_made_dir: str | None = None


def _dir_for(directory: str, pid: int) -> str:
    group = handover.group_of_master(pid) or f"pid{pid}"
    return os.path.join(directory, f"stats-{group}")


def prepare_dir(directory: str) -> str:
    """The master's part (``on_starting``): its workers' directory inside the private
    ``directory``, inherited through :data:`STATS_DIR_ENV`."""
    global _made_dir
    path = state_dir.ensure_private_dir(_dir_for(directory, os.getpid()))
    os.environ[STATS_DIR_ENV] = _made_dir = path
    return path


def remove_dir() -> None:
    """The master's part (``on_exit``): remove the directory :func:`prepare_dir` made."""
    if _made_dir is not None:
        shutil.rmtree(_made_dir, ignore_errors=True)


def stats_dir(directory: str) -> str:
    """This process's directory: its master's, else one of its own in ``directory``."""
    return os.environ.get(STATS_DIR_ENV) or _dir_for(directory, os.getpid())


def app_counts(applications: Mapping[str, ApplicationContext],
               connections: Iterable[ServerConnection]) -> dict[str, Any]:
    """Per app (``ApplicationContext`` by key): sessions, websockets and message counters."""
    open_sockets: dict[str, int] = {}
    for connection in connections:
        key = connection.application_context.url
        open_sockets[key] = open_sockets.get(key, 0) + 1
    return {"apps": {key: {"sessions": len(context.sessions), "connections": open_sockets.get(key, 0),
                           "messages_in": context.messages_in, "messages_out": context.messages_out}
                     for key, context in applications.items()}}


class StatsWriter:
    """Writes ``snapshot()`` (plus pid, time and RSS) to this worker's file every second."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], directory: str) -> None:
        self.snapshot = snapshot
        self.directory = directory
        self._pid: int | None = None
        self._job: PeriodicCallback | None = None

    @property
    def path(self) -> str:
        return os.path.join(self.directory, f"{os.getpid()}.json")

    def start(self) -> None:
        """Write now and every :data:`WRITE_INTERVAL` (once per process; later calls do nothing)."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        try:
            state_dir.ensure_private_dir(self.directory)
            self.write()
        except (OSError, state_dir.PrivateDirError) as exc:
            log.warning("the admin page will not show this worker: %s", exc)
            return
        from .periodic import PeriodicCallback  # gevent: only in a worker

        self._job = PeriodicCallback(self.write, WRITE_INTERVAL, "worker stats")
        self._job.start()
        atexit.register(self.stop)

    def write(self) -> None:
        record = {"pid": os.getpid(), "time": time.time(), "rss_mib": round(memory.rss_mib(), 1),
                  **self.snapshot()}
        path = self.path
        with open(path + ".tmp", "w", encoding="utf-8") as file:
            json.dump(record, file)
        os.replace(path + ".tmp", path)

    def stop(self) -> None:
        """Stop writing and remove the file (an orderly exit; readers skip a killed one's)."""
        if self._pid != os.getpid():
            return
        self._pid = None
        if self._job is not None:
            self._job.stop()
            self._job = None
        for path in (self.path, self.path + ".tmp"):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        if self.directory != os.environ.get(STATS_DIR_ENV):
            try:
                os.rmdir(self.directory)  # a directory of its own: gone with its last file
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_workers(directory: str) -> list[dict[str, Any]]:
    """The live workers' latest records (files in ``directory``), by pid."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    now = time.time()
    records = []
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as file:
                record = json.load(file)
        except (OSError, ValueError):
            continue  # removed meanwhile
        pid = record.get("pid")
        if isinstance(pid, int) and _alive(pid) and now - record.get("time", 0) <= STALE_AFTER:
            records.append(record)
    return sorted(records, key=lambda record: record["pid"])
