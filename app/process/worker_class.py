"""Refuse gunicorn worker classes that cannot hold websockets.

Under ``sync`` or ``gthread`` workers the page loads but the websocket cannot be served
alongside other requests: the embed stays blank and the log only says ``dropping websocket:
peer stopped reading``. A host app started with plain ``gunicorn app:app`` gets the sync
worker, so ``init_app`` stops it with one line naming the fix instead.
"""
from __future__ import annotations

import sys
from types import FrameType
from typing import TYPE_CHECKING

from gunicorn.errors import AppImportError

from ..config.settings import SettingsError

if TYPE_CHECKING:
    from gunicorn.config import Config

MESSAGE = "bokeh-flask needs gunicorn's gevent worker: run with -k gevent (or -c gunicorn.conf.py)"


class WorkerClassError(SettingsError, AppImportError):
    """gunicorn's worker class cannot serve websockets.

    An ``AppImportError`` makes gunicorn print just the message and stop (exit status 4,
    "App failed to load") instead of logging a traceback and respawning; as a
    ``SettingsError`` our own ``wsgi.py`` reports it like any bad setting.
    """


def gunicorn_config() -> Config | None:
    """The configuration of the gunicorn loading this app, or None outside gunicorn.

    gunicorn imports the app inside ``BaseApplication.wsgi()`` (in each worker, or in the
    master with ``--preload``), and that object's ``cfg`` holds the worker class the arbiter
    forks (``sync`` with ``--threads`` > 1 already turned into gthread). Under ``flask run``
    or a test there is no such frame on the stack.
    """
    if "gunicorn.app.base" not in sys.modules:
        return None
    from gunicorn.app.base import BaseApplication

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, BaseApplication):
            return owner.cfg
        frame = frame.f_back
    return None


def refuse_unsuitable_worker() -> None:
    """Stop when gunicorn runs any worker class but gevent's: WorkerClassError in a worker;
    in the master (``--preload``), where gunicorn would print a traceback, the line and exit."""
    cfg = gunicorn_config()
    if cfg is None:
        return
    from gunicorn.workers.ggevent import GeventWorker

    if issubclass(cfg.worker_class, GeventWorker):
        return
    if cfg.preload_app:
        print(MESSAGE, file=sys.stderr)
        raise SystemExit(4)
    raise WorkerClassError(MESSAGE)
