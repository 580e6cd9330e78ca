"""An app that fails to load, described so that its author finds the line.

``bokeh serve`` and Bokeh's handlers report a broken app as text (``handler.error``,
``handler.error_detail``) or as an exception wrapped in a ``RuntimeError``. An
:class:`AppLoadError` keeps what a person needs, once: which app, which file and line,
the message, and the traceback. The CLI prints it as one block before any server starts;
``--dev`` shows it as a page and in the log while the server stays up.
"""
from __future__ import annotations

import os
import re
import sysconfig
import traceback
from typing import TYPE_CHECKING

from ..config.settings import SettingsError

if TYPE_CHECKING:
    from bokeh.application.handlers.handler import Handler

#: ``File "/path/app.py", line 3`` in a formatted traceback.
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


class AppLoadError(SettingsError):
    """The app at ``app_path`` cannot be built; :meth:`block` says where and why."""

    def __init__(self, app_path: str, message: str, filename: str | None = None,
                 lineno: int | None = None, traceback_text: str = "") -> None:
        self.app_path = app_path
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.traceback_text = traceback_text.rstrip()
        super().__init__(f"could not load app {app_path}: {message}{self.where(' (', ')')}")

    def where(self, before: str = "", after: str = "") -> str:
        """``File "x.py", line 3`` when known, else nothing."""
        if self.filename is None:
            return ""
        line = f", line {self.lineno}" if self.lineno else ""
        return f'{before}File "{self.filename}"{line}{after}'

    def block(self) -> str:
        """The app, the file and line, the message, then the traceback once."""
        head = [f"could not load app {self.app_path}"]
        if self.filename:
            head.append(f"  {self.where()}")
        head.append(f"  {self.message}")
        return "\n".join(head) + "\n\n" + self.traceback_text + "\n"

    @classmethod
    def from_exception(cls, app_path: str, exc: BaseException) -> AppLoadError:
        """From an exception raised while Bokeh built the app (a theme, a template, a
        lifecycle module), or one of Bokeh's ``RuntimeError('Error loading ...')``."""
        if isinstance(exc, SyntaxError):
            text = "".join(traceback.format_exception_only(type(exc), exc))
            return cls(app_path, f"SyntaxError: {exc.msg}", exc.filename, exc.lineno, text)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        filename, lineno = _source_position(exc) or _innermost_frame(text, app_path)
        message = " ".join(str(exc).split()) if not isinstance(exc, RuntimeError) else ""
        return cls(app_path, f"{type(exc).__name__}: {message}" if message else _exception_line(text),
                   filename, lineno, text)

    @classmethod
    def from_handler(cls, app: str, handler: Handler) -> AppLoadError:
        """From a Bokeh handler whose code raised while it built a document (``handler.failed``);
        ``app`` names it (its URL)."""
        detail = handler.error_detail or ""
        filename, lineno = _innermost_frame(detail, None)
        message = _exception_line(detail) or str(handler.error or "the app's code failed")
        return cls(app, message, filename, lineno, detail or str(handler.error))


def check_syntax(app_path: str) -> None:
    """Compile the scripts Bokeh will run for ``app_path`` (the script, or a directory's
    ``main.py`` and lifecycle modules), so a syntax error keeps its exact line and caret
    rather than Bokeh's wrapped text."""
    if os.path.isdir(app_path):
        candidates = [os.path.join(app_path, name) for name in ("main.py", "server_lifecycle.py", "app_hooks.py")]
    else:
        candidates = [app_path] if app_path.endswith(".py") else []
    for script in candidates:
        if not os.path.isfile(script):
            continue
        with open(script, "rb") as file:
            source = file.read()
        try:
            compile(source, script, "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise AppLoadError.from_exception(app_path, exc) from None


def _source_position(exc: BaseException) -> tuple[str, int] | None:
    """The file and line a parse error names itself: a YAML theme's ``problem_mark``, a
    Jinja template's ``filename`` and ``lineno``."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None and getattr(mark, "name", None):
        return mark.name, mark.line + 1
    filename, lineno = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    if isinstance(filename, str) and isinstance(lineno, int):
        return filename, lineno
    return None


def _innermost_frame(text: str, app_path: str | None) -> tuple[str | None, int | None]:
    """The last frame of ``text`` inside the app (its file or directory; without a path, the
    last outside Python's and the installed packages' directories), else the last frame."""
    frames: list[tuple[str, int]] = [(name, int(line)) for name, line in _FRAME.findall(text)]
    if app_path is not None:
        root = os.path.abspath(app_path)
        inside = [f for f in frames if _within(f[0], root)]
    else:
        libraries = {os.path.abspath(p) for p in sysconfig.get_paths().values()}
        inside = [f for f in frames if not any(_within(f[0], lib) for lib in libraries)
                  and not f[0].startswith("<")]
    chosen = inside or frames
    if not chosen:
        return None, None
    return chosen[-1]


def _within(path: str, root: str) -> bool:
    path = os.path.abspath(path)
    return path == root or path.startswith(root + os.sep)


def _exception_line(text: str) -> str:
    """The ``Type: message`` line a traceback ends with."""
    lines = [line for line in text.strip().splitlines() if line and not line.startswith(" ")]
    return lines[-1].strip() if lines else ""


def describe(error: SettingsError) -> str:
    """What the terminal shows for a setting or app that stops the server: an app's block,
    else the one line."""
    return error.block() if isinstance(error, AppLoadError) else f"{error}\n"
