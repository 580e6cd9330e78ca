"""Turn what a user names as an app into Bokeh ``Application`` objects keyed by URL.

Accepted: paths to scripts (``.py``), notebooks (``.ipynb``) and directory apps (via Bokeh's
own ``build_single_handler_application``), ``modify_doc(doc)`` functions, and ready-made
``Application`` objects; as a list (keys from file names) or a mapping of key to source.
A lone function or Application is served at ``/``, as Bokeh's ``Server`` does.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping, Union

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.document import Document

from ..config.settings import SettingsError
from .app_keys import EXAMPLE_APPS, EXAMPLES_DIR, key_for_path, normalize_key
from .load_errors import AppLoadError, check_syntax

AppSource = Union[str, "os.PathLike[str]", Application, Callable[[Document], None]]
#: What ``apps=`` takes: one source, several (keyed by their paths), or {url: source}.
AppSources = Union[AppSource, Iterable[AppSource], Mapping[str, AppSource], None]

def default_app_paths() -> list[str]:
    """``BOKEH_APPS`` (os.pathsep-separated paths) if set, else the bundled examples."""
    env = os.environ.get("BOKEH_APPS", "").strip()
    if env:
        return [p for p in env.split(os.pathsep) if p.strip()]
    return [str(EXAMPLES_DIR / name) for name in EXAMPLE_APPS]


def app_argv() -> list[str]:
    """``sys.argv`` for app code, from ``bokeh-flask serve --args`` (``BOKEH_FLASK_ARGS``)."""
    import json

    return list(json.loads(os.environ.get("BOKEH_FLASK_ARGS", "[]")))


def _locate(path: str, root_path: str | None) -> tuple[str, str]:
    """The absolute path to load and how errors name it. A relative path joins ``root_path``
    (the host app's folder, as Flask finds templates), else the current directory (the
    standalone server's ``BOKEH_APPS``), so the same code works from any working directory."""
    base = root_path if root_path is not None else os.getcwd()
    resolved = os.path.abspath(os.path.join(base, path))
    if os.path.isabs(path):
        return resolved, resolved
    origin = f"the app's root_path {base}" if root_path is not None else f"the current directory {base}"
    return resolved, f"{resolved} ({path!r} is relative to {origin})"


#: Where a directory app's code starts, as ``bokeh serve`` looks for it.
DIRECTORY_MAINS = ("main.py", "main.ipynb")


def build_application(source: AppSource, argv: list[str] | None = None,
                      root_path: str | None = None) -> Application:
    """One Application; a relative path resolves against ``root_path`` (see ``_locate``)."""
    if isinstance(source, Application):
        return source
    if callable(source):
        return Application(FunctionHandler(source))
    path, described = _locate(os.fspath(source), root_path)
    if not os.path.exists(path):
        raise SettingsError(f"app path does not exist: {described}")
    if os.path.isfile(path) and not path.endswith((".py", ".ipynb")):
        raise SettingsError(f"app path must be a .py script, a .ipynb notebook or a directory: {described}")
    if os.path.isdir(path) and not any(os.path.isfile(os.path.join(path, main)) for main in DIRECTORY_MAINS):
        raise SettingsError(f"app directory {described} has no main.py or main.ipynb: a directory app's "
                            "code starts there (serve a script by its own path)")
    from bokeh.command.util import build_single_handler_application

    check_syntax(path)
    try:
        return build_single_handler_application(path, argv if argv is not None else app_argv())
    except Exception as exc:
        raise AppLoadError.from_exception(path, exc) from None


def build_applications(apps: AppSources,
                       root_path: str | None = None,
                       load_errors: dict[str, AppLoadError] | None = None) -> dict[str, Application]:
    """Resolve ``apps`` into ``{key: Application}``; raise SettingsError on a bad entry.

    Relative paths in ``apps`` resolve against ``root_path`` when given (the host Flask
    app's ``root_path``); the default ``BOKEH_APPS`` always against the current directory.
    With ``load_errors`` (``--dev``), an app whose code fails to load does not stop the
    others: its error is recorded under its key and an empty Application holds the place.
    """
    if apps is None:
        apps, root_path = default_app_paths(), None
    if isinstance(apps, (str, os.PathLike, Application)) or callable(apps):
        apps = [apps]
    if isinstance(apps, Mapping):
        items = [(normalize_key(k), v) for k, v in apps.items()]
    else:
        items = []
        for source in apps:
            if isinstance(source, (str, os.PathLike)):
                items.append((key_for_path(_locate(os.fspath(source), root_path)[0]), source))
            else:
                items.append(("/", source))
    result: dict[str, Application] = {}
    for key, source in items:
        if key in result:
            raise SettingsError(f"two apps would be served at the same URL {key!r}")
        try:
            result[key] = build_application(source, root_path=root_path)
        except AppLoadError as exc:
            if load_errors is None:
                raise
            load_errors[key] = exc
            result[key] = Application()
    if not result:
        raise SettingsError("no apps to serve")
    return result
