"""Reading settings: merge every source over the defaults, then validate once.

Values come from five places, strongest first: explicit overrides (CLI flags or keyword
arguments to ``BokehServer``), Flask config (``BOKEH_<NAME>`` keys, or a setting's
environment variable names), the environment (Bokeh's ``BOKEH_*`` variables and ours,
``BOKEH_FLASK_*``), a ``--use-config`` file, then the defaults. What each setting is, and
which names it has in each place, is declared once in :mod:`.options`. A bad value raises
:class:`SettingsError` with a message naming the option and where it came from.

This module must stay import-light (no Flask, no Bokeh): the CLI validates settings in the
gunicorn master before any worker imports the web stack.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from .checks import ACROSS
from .declare import Option, SettingsError, parse_bool
from .options import LOG_LEVELS, OPTIONS, SESSION_ID_MODES, Settings, normalize_prefix

__all__ = ["LOG_LEVELS", "OPTIONS", "SESSION_ID_MODES", "Settings", "SettingsError", "build_settings",
           "master_environ", "merged_values", "normalize_prefix", "parse_bool", "read_config_file", "validate"]

#: Flask config keys: each setting's ``BOKEH_<NAME>``, and its environment variables' names.
_CONFIG_KEYS: dict[str, Option] = {
    **{var: o for o in OPTIONS.values() for var in o.env},
    **{o.config_key: o for o in OPTIONS.values()},
}
#: Keys of a ``--use-config`` file (Bokeh's setting names) that set a setting here; the
#: file's other Bokeh settings (``resources``, ``minified`` ...) reach Bokeh itself.
_CONFIG_FILE_KEYS: dict[str, Option] = {o.config_file_key: o for o in OPTIONS.values() if o.config_file_key}


def build_settings(
    overrides: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge overrides, Flask config and environment over the defaults, then validate.

    ``overrides`` uses setting names (``keep_alive``), ``config`` is a Flask config mapping
    (``BOKEH_KEEP_ALIVE``, or Bokeh's ``BOKEH_ALLOW_WS_ORIGIN`` ...); ``session_ids``
    (unsigned / signed / external-signed) sets the signing fields. A None value is unset.
    """
    values = merged_values(overrides, config, os.environ if environ is None else environ)
    for declaration in OPTIONS.values():
        if declaration.reads_into and values.get(declaration.name):
            values[declaration.reads_into] = _read_secret(values[declaration.name], declaration.label)
    settings = Settings(**values)
    validate(settings)
    return settings


def merged_values(overrides: Mapping[str, Any] | None, config: Mapping[str, Any] | None,
                  environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings each source gives, read by their types, the stronger source's value
    where two give one; no secret file read yet and nothing checked."""
    values: dict[str, Any] = {}

    def take(declaration: Option, value: Any, source: str, bokeh_name: bool = False) -> None:
        value = declaration.read(value, source)
        if bokeh_name and declaration.bokeh_reading is not None:
            value = declaration.bokeh_reading(value)
        if declaration.expands is not None:
            values.update(declaration.expands(value, f"{declaration.name.replace('_', '-')} (from {source})"))
        else:
            values[declaration.name] = value

    for declaration in OPTIONS.values():
        for var in declaration.env:
            if environ.get(var, "") != "":
                take(declaration, environ[var], var, bokeh_name=True)
    for key, value in (config or {}).items():
        if key in _CONFIG_KEYS and value is not None:
            take(_CONFIG_KEYS[key], value, f"Flask config {key}")
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in OPTIONS:
            raise SettingsError(f"unknown setting {name!r} (from argument)")
        take(OPTIONS[name], value, "argument")
    if values.get("use_config"):
        for key, value in read_config_file(values["use_config"]).items():
            declaration = _CONFIG_FILE_KEYS[key]
            if declaration.name not in values:  # the file ranks below the environment, config and flags
                take(declaration, value, f"{key} in --use-config {values['use_config']}", bokeh_name=True)
    return values


def read_config_file(path: str) -> dict[str, Any]:
    """The settings of ours a ``--use-config`` YAML file sets, by its keys."""
    import yaml

    try:
        with open(path, encoding="utf-8") as file:
            content = yaml.safe_load(file)
    except OSError as exc:
        raise SettingsError(f"--use-config: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"--use-config: {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise SettingsError(f"--use-config: {path} must hold 'key: value' lines (Bokeh setting names)")
    return {key: value for key, value in content.items() if key in _CONFIG_FILE_KEYS and value is not None}


def _read_secret(path: str, flag: str) -> str:
    """The secret a ``flag`` file holds (surrounding whitespace and the newline dropped)."""
    try:
        with open(path, encoding="utf-8") as file:
            secret = file.read().strip()
    except OSError as exc:
        raise SettingsError(f"{flag}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{flag}: {path} is not UTF-8 text") from None
    if not secret:
        raise SettingsError(f"{flag}: {path} is empty")
    return secret


def validate(settings: Settings) -> None:
    """Refuse settings ``bokeh serve`` would refuse: each setting's own check, then the
    checks across settings; the first problem is raised, naming the flag."""
    labels = {name: declaration.label for name, declaration in OPTIONS.items()}
    for declaration in OPTIONS.values():  # a value read from a file is named by the file's flag
        if declaration.reads_into and getattr(settings, declaration.name):
            labels[declaration.reads_into] = declaration.label
    for name, declaration in OPTIONS.items():
        value = getattr(settings, name, None)
        problem = declaration.check(value, labels[name]) if declaration.check and value is not None else None
        if problem:
            raise SettingsError(problem)
    for check in ACROSS:
        problem = check(settings, labels)
        if problem:
            raise SettingsError(problem)


def master_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables of the settings gunicorn's master reads (``master=True``):
    ``gunicorn.conf.py`` validates only those; the workers validate every setting."""
    environ = os.environ if environ is None else environ
    return {var: environ[var] for declaration in OPTIONS.values() if declaration.master
            for var in declaration.env if var in environ}
