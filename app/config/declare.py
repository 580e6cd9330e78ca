"""What one setting's declaration holds, and how a value is read by the setting's type.

A setting is one field of the ``Settings`` dataclass (:mod:`.options`) whose default is
:func:`option`: the :class:`Option` in its metadata says where else the setting appears
(CLI flag, environment variables, Flask config key, ``--use-config`` key), how it is checked
and what its help says. :func:`declared` collects them with the fields' real types, so a
value from the environment, Flask config or a flag is read by its type (``int | None``,
``tuple[str, ...]``, ``bool``), whatever the annotation's spelling (``Optional[int]``).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping

_TRUE = {"1", "yes", "true", "on", "y", "t"}
_FALSE = {"0", "no", "false", "off", "n", "f", ""}

#: One setting's check: the problem as one line naming ``flag``, or None.
Check = Callable[[Any, str], "str | None"]
#: Reads a value given as text (environment, file) or as a Python value; the label names
#: the setting and where the value came from.
Reader = Callable[[Any, str], Any]


class SettingsError(ValueError):
    """A configuration value is invalid; the message says which and why."""


def parse_bool(value: Any, name: str) -> bool:
    """Read a boolean the way a user means it.

    Bokeh itself treats any non-empty ``BOKEH_SIGN_SESSIONS`` as true (so ``no`` enables
    signing); we read ``no``, ``false``, ``0`` and ``off`` as false and reject nonsense.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{name}: expected yes/no (true/false, 1/0), got {value!r}")


def _read_int(value: Any, label: str) -> int:
    if isinstance(value, bool):  # True is an int to Python, never to a user
        raise SettingsError(f"{label}: expected an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise SettingsError(f"{label}: expected an integer, got {value!r}") from None


def _read_str(value: Any, label: str) -> str:
    return str(value)


def _items(value: Any) -> list[str]:
    """A comma-separated string or an iterable, as stripped non-empty items."""
    items = value.split(",") if isinstance(value, str) else value
    return [text for text in (str(item).strip() for item in items) if text]


def reader(kind: Any) -> Reader:
    """How to read a value of type ``kind``; a type without a reader is a TypeError, which
    :func:`declared` raises at import, so a field of an unreadable type cannot ship."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        inner = [arg for arg in args if arg is not type(None)]
        if len(inner) == 1 and len(args) == 2:
            read_inner = reader(inner[0])
            return lambda value, label: None if value is None else read_inner(value, label)
    if typing.get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis:
        read_item = reader(args[0])
        return lambda value, label: tuple(read_item(item, label) for item in _items(value))
    simple: dict[Any, Reader] = {bool: parse_bool, int: _read_int, str: _read_str}
    if kind in simple:
        return simple[kind]
    raise TypeError(f"settings of type {kind!r} have no reader: use bool, int, str, "
                    "X | None or tuple[X, ...]")


@dataclass(frozen=True, eq=False)
class Option:
    """Everything about one setting but its name, type and default (those are its field's)."""

    #: What the setting does, for ``--help`` and the README; the default is appended.
    help: str
    #: Whether ``bokeh-flask serve`` has ``--<name>`` for it (Bokeh's flags are the names).
    flag: bool = True
    #: argparse details of the flag (``metavar``, ``nargs``, ``choices``, ``action``); the
    #: rest follows the type: ``type=int``, ``nargs="+"`` for tuples, ``store_true`` for a
    #: bool that is off by default and ``--x/--no-x`` for one that is on.
    cli: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Other flag names that mean the same (Panel's, where its flag does the same thing).
    aliases: tuple[str, ...] = ()
    #: Environment variables that set it: Bokeh's ``BOKEH_*`` or our ``BOKEH_FLASK_*``.
    env: tuple[str, ...] = ()
    #: Key of a ``--use-config`` YAML file (Bokeh's setting name) that sets it.
    config_file_key: str | None = None
    #: The check of its value alone (skipped for None); checks across settings are in
    #: :data:`.checks.ACROSS`.
    check: Check | None = None
    #: The default as ``--help`` and the README show it, when the value says too little.
    shown_default: str | None = None
    #: Kept out of ``repr``.
    secret: bool = False
    #: A file path the CLI makes absolute (the workers may start elsewhere).
    path: bool = False
    #: The setting this file's content sets (a secret that shows in no command line).
    reads_into: str | None = None
    #: Applied to a value read from the environment or the config file, where Bokeh
    #: reads its own names differently from ours.
    bokeh_reading: Callable[[Any], Any] | None = None
    #: Applied to every value read (``prefix``: Bokeh's slash rule).
    normalize: Callable[[Any], Any] | None = None
    #: What a flag's parsed value sets (``--dev FILES`` turns ``dev`` on).
    from_cli: Callable[[Any], Any] | None = None
    #: An input that is no field: the fields its value sets (``session_ids``).
    expands: Callable[[Any, str], dict[str, Any]] | None = None
    #: ``gunicorn.conf.py`` reads it in the master (gunicorn's own options use it); the
    #: workers read every setting.
    master: bool = False
    #: From the field (or given, for an :attr:`expands` input).
    name: str = ""
    kind: Any = None
    default: Any = None
    read_value: Reader | None = dataclasses.field(default=None, repr=False)

    @property
    def flags(self) -> tuple[str, ...]:
        return (f"--{self.name.replace('_', '-')}", *self.aliases) if self.flag else ()

    @property
    def label(self) -> str:
        """How messages name the setting: its flag, else its environment variable."""
        return (self.flags or self.env or (self.name,))[0]

    @property
    def config_key(self) -> str:
        """Its Flask config key; its environment variables' names are accepted there too."""
        return f"BOKEH_{self.name.upper()}"

    @property
    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if self.default in (None, "", ()):
            return "none"
        return str(self.default)

    @property
    def help_text(self) -> str:
        """The help with the default and the environment variables (``--help``)."""
        env = f"; env {', '.join(self.env)}" if self.env else ""
        return f"{self.help} (default: {self.default_text}{env})"

    def read(self, value: Any, source: str) -> Any:
        """``value`` as this setting's type; a wrong one names the setting and ``source``."""
        assert self.read_value is not None, "declared() sets the reader"
        value = self.read_value(value, f"{self.name.replace('_', '-')} (from {source})")
        return value if self.normalize is None else self.normalize(value)


def option(default: Any, help: str, **declaration: Any) -> Any:
    """A ``Settings`` field declared by ``Option(help, **declaration)``."""
    declared_option = Option(help=help, **declaration)
    return dataclasses.field(default=default, repr=not declared_option.secret,
                             metadata={"option": declared_option})


def declared(settings_class: type, *inputs: Option) -> dict[str, Option]:
    """Every field's :class:`Option`, completed with the field's name, real type and
    default, then the ``inputs`` that are no field; a field without one is a TypeError."""
    hints = typing.get_type_hints(settings_class)
    found: dict[str, Option] = {}
    for field in dataclasses.fields(settings_class):
        declaration = field.metadata.get("option")
        if declaration is None:
            raise TypeError(f"{settings_class.__name__}.{field.name} is not declared with option()")
        kind = hints[field.name]
        found[field.name] = dataclasses.replace(declaration, name=field.name, kind=kind,
                                                default=field.default, read_value=reader(kind))
    for declaration in inputs:
        found[declaration.name] = dataclasses.replace(declaration, read_value=reader(declaration.kind))
    return found
