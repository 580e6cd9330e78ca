"""Turn what a user names as an app into Bokeh ``Application`` objects keyed by URL.

Accepted: paths to scripts (``.py``), notebooks (``.ipynb``) and directory apps (via Bokeh's
own ``build_single_handler_application``), ``modify_doc(doc)`` functions, and ready-made
``Application`` objects; as a list (keys from file names) or a mapping of key to source.
A lone function or Application is served at ``/``, as Bokeh's ``Server`` does.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Mapping, Union

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler

from .app_errors import AppLoadError, check_syntax
from .app_keys import EXAMPLE_APPS, EXAMPLES_DIR, key_for_path, normalize_key
from .settings import SettingsError

AppSource = Union[str, os.PathLike, Application, Callable[..., Any]]

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


def build_application(source: AppSource, argv: list[str] | None = None) -> Application:
    if isinstance(source, Application):
        return source
    if callable(source):
        return Application(FunctionHandler(source))
    path = os.fspath(source)
    if not os.path.exists(path):
        raise SettingsError(f"app path does not exist: {path}")
    if os.path.isfile(path) and not path.endswith((".py", ".ipynb")):
        raise SettingsError(f"app path must be a .py script, a .ipynb notebook or a directory: {path}")
    from bokeh.command.util import build_single_handler_application

    check_syntax(path)
    try:
        return build_single_handler_application(path, argv if argv is not None else app_argv())
    except Exception as exc:
        raise AppLoadError.from_exception(path, exc) from None


def build_applications(apps: AppSource | Iterable[AppSource] | Mapping[str, AppSource] | None,
                       load_errors: dict[str, AppLoadError] | None = None) -> dict[str, Application]:
    """Resolve ``apps`` into ``{key: Application}``; raise SettingsError on a bad entry.

    With ``load_errors`` (``--dev``), an app whose code fails to load does not stop the
    others: its error is recorded under its key and an empty Application holds the place.
    """
    if apps is None:
        apps = default_app_paths()
    if isinstance(apps, Application) or callable(apps) or isinstance(apps, (str, os.PathLike)):
        apps = [apps]
    if isinstance(apps, Mapping):
        items = [(normalize_key(k), v) for k, v in apps.items()]
    else:
        items = []
        for source in apps:
            if isinstance(source, (str, os.PathLike)):
                items.append((key_for_path(os.fspath(source)), source))
            else:
                items.append(("/", source))
    result: dict[str, Application] = {}
    for key, source in items:
        if key in result:
            raise SettingsError(f"two apps would be served at the same URL {key!r}")
        try:
            result[key] = build_application(source)
        except AppLoadError as exc:
            if load_errors is None:
                raise
            load_errors[key] = exc
            result[key] = Application()
    if not result:
        raise SettingsError("no apps to serve")
    return result
