"""The server's private directory: every file and Unix socket bokeh-flask makes on a host.

The shared temp directory belongs to every local user: any of them can create a name there
before the server does (a login store they control, a stats directory they read), and
connect to or bind any abstract Unix socket. So the server keeps what it writes in one
directory that only its own user can enter (mode 0700), with files of mode 0600:

- ``logins.sqlite3``: the default login store and the host's logout events;
- ``pending-logouts.sqlite3``: logouts a shared store has not confirmed yet;
- ``broadcasts.sqlite3``: broadcasts between the workers of a server on this host;
- ``stats-<group>/`` and ``metrics-*/``: ``--admin``'s and ``--metrics``' worker files;
- ``handover-<worker key>.sock``: each worker's listener for handed websockets.

The directory is ``--state-dir`` when given, else ``$XDG_RUNTIME_DIR/bokeh-flask`` (a
directory of the user's own, which no one else can pre-create), else
``<temp dir>/bokeh-flask-<uid>``. An existing directory or file that another user owns, or
that others may write to, is refused with :class:`PrivateDirError`, never used: its
contents could have been planted.

Import-light (no Flask, no Bokeh, no gevent): the gunicorn master uses it.
"""
from __future__ import annotations

import os
import stat
import tempfile

from .settings import SettingsError

#: The name of the directory under ``$XDG_RUNTIME_DIR``.
RUNTIME_NAME = "bokeh-flask"


class PrivateDirError(SettingsError):
    """A path the server would write to is not private; the message names it and the fix."""


def default_state_dir() -> str:
    """``$XDG_RUNTIME_DIR/bokeh-flask`` when that runtime directory is this user's own (not a
    ``sudo`` caller's), else ``<temp dir>/bokeh-flask-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):
        try:
            info = os.stat(runtime)
        except OSError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            return os.path.join(runtime, RUNTIME_NAME)
    return os.path.join(tempfile.gettempdir(), f"bokeh-flask-{os.geteuid()}")


def resolve(state_dir: str | None) -> str:
    """The state directory for a ``state_dir`` setting (None: the default), as an absolute path."""
    return os.path.abspath(state_dir) if state_dir else default_state_dir()


def _refusal(path: str, problem: str, fix: str) -> PrivateDirError:
    return PrivateDirError(f"{path} {problem}: {fix}")


def ensure_private_dir(path: str, setting: str = "--state-dir (BOKEH_FLASK_STATE_DIR)") -> str:
    """Create ``path`` (mode 0700) or check an existing one: a real directory (not a
    symlink) of this user that no one else may write to. One that others may only read is
    narrowed to 0700. Returns ``path``; raises :class:`PrivateDirError` otherwise, whose
    fix names ``setting``, the option that chose the path."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _refusal(path, f"cannot be created ({exc.strerror})",
                       f"choose another directory with {setting}") from None
    info = os.lstat(path)
    fix = f"remove it (or choose another directory with {setting}), so the server creates its own"
    if not stat.S_ISDIR(info.st_mode):
        raise _refusal(path, "is not a directory (a symlink or file someone made)", fix)
    if info.st_uid != os.geteuid():
        raise _refusal(path, f"belongs to uid {info.st_uid}, not to this server's user (uid {os.geteuid()})", fix)
    if info.st_mode & 0o022:
        raise _refusal(path, "may be written by other users", f"{fix}, or `chmod 700 {path}`")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def ensure_private_file(path: str) -> str:
    """Create ``path`` empty (mode 0600) unless it exists, or check an existing one: a
    regular file of this user that no one else may write to (one others may only read is
    narrowed to 0600). Returns ``path``; raises :class:`PrivateDirError` otherwise."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        return path
    except FileExistsError:
        pass
    except OSError as exc:
        raise _refusal(path, f"cannot be created ({exc.strerror})",
                       "check the directory or choose another path") from None
    info = os.lstat(path)
    fix = "remove it, or give a path of the server's own"
    if not stat.S_ISREG(info.st_mode):
        raise _refusal(path, "is not a regular file (a symlink or something else someone made)", fix)
    if info.st_uid != os.geteuid():
        raise _refusal(path, f"belongs to uid {info.st_uid}, not to this server's user (uid {os.geteuid()})", fix)
    if info.st_mode & 0o022:
        raise _refusal(path, "may be written by other users", f"{fix}, or `chmod 600 {path}`")
    if info.st_mode & 0o077:
        os.chmod(path, 0o600)
    return path


def prepare(state_dir: str | None) -> str:
    """The checked state directory for a ``state_dir`` setting (created when missing)."""
    return ensure_private_dir(resolve(state_dir))


def remove_if_present(path: str) -> None:
    """Remove a file the server made, if it is still there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
