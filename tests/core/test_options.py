"""Every setting declared once (issue 22 item 2): the declarations in app/config/options.py
are what the README's table, ``bokeh-flask serve``'s flags and the reading of every source
are made from; values are read by the field's real type."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from bokeh_flask.app.config import reference
from bokeh_flask.app.config.declare import declared, option
from bokeh_flask.app.config.settings import (
    OPTIONS,
    Settings,
    SettingsError,
    build_settings,
    master_environ,
    merged_values,
)
from bokeh_flask.app.process.cli import _parser, _settings_from_args

ROOT = Path(__file__).resolve().parents[2]
FIELDS = [o for o in OPTIONS.values() if o.expands is None]

#: A value of each kind as text (environment, config file) and what it reads as.
TEXT = {bool: ("yes", True), int: (" 12 ", 12), str: ("x", "x"), int | None: ("3", 3),
        str | None: ("x", "x"), tuple[str, ...]: ("a, b,,", ("a", "b"))}
#: Text no reader of that kind accepts, and the message's shape.
WRONG = {bool: ("maybe", "expected yes/no"), int: ("many", "expected an integer"),
         int | None: ("1.5", "expected an integer")}


def test_the_readme_holds_the_generated_settings_table():
    readme = (ROOT / "README.md").read_text()
    assert reference.replace_table(readme) == readme, (
        "README.md's settings table is stale: python -m bokeh_flask.app.config.reference --write README.md")


def test_the_table_has_one_row_per_setting_with_its_flag_environment_and_default():
    rows = reference.settings_table().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{name}`" for name in OPTIONS]
    for row, declaration in zip(rows, OPTIONS.values()):
        assert all(name in row for name in (*declaration.flags, *declaration.env, declaration.config_key))
        assert reference._prose(declaration.default_text) in row


def test_the_generator_writes_the_readme_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{reference.BEGIN}\n| old |\n{reference.END}\n\nafter\n")
    done = subprocess.run([sys.executable, "-m", "bokeh_flask.app.config.reference", "--write", str(readme)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert readme.read_text() == f"# x\n\n{reference.BEGIN}\n{reference.settings_table()}{reference.END}\n\nafter\n"


@pytest.mark.parametrize("names", [
    lambda o: o.flags, lambda o: o.env, lambda o: (o.config_key,),
    lambda o: (o.config_file_key,) if o.config_file_key else (),
], ids=["flags", "environment", "flask-config", "config-file"])
def test_no_name_sets_two_settings(names):
    counts = Counter(name for declaration in OPTIONS.values() for name in names(declaration))
    assert [name for name, count in counts.items() if count > 1] == []


def test_a_flask_config_key_of_one_setting_is_no_environment_variable_of_another():
    config = {o.config_key: o.name for o in OPTIONS.values()}
    assert [(var, o.name) for o in OPTIONS.values() for var in o.env if config.get(var, o.name) != o.name] == []


def test_every_field_is_declared_and_every_declaration_is_a_field_or_an_input():
    assert [o.name for o in FIELDS] == list(Settings.__dataclass_fields__)
    assert [o.name for o in OPTIONS.values() if o.expands] == ["session_ids"]
    assert all(o.reads_into in OPTIONS for o in OPTIONS.values() if o.reads_into)


@pytest.mark.parametrize("declaration", FIELDS, ids=lambda o: o.name)
def test_every_setting_is_read_by_its_type(declaration):
    text, value = TEXT[declaration.kind]
    assert declaration.read(text, "X") == (declaration.normalize(value) if declaration.normalize else value)
    if declaration.kind in WRONG:
        wrong, message = WRONG[declaration.kind]
        with pytest.raises(SettingsError) as error:
            declaration.read(wrong, "SOURCE")
        assert str(error.value).startswith(f"{declaration.name.replace('_', '-')} (from SOURCE): {message}")


@pytest.mark.parametrize("declaration", [o for o in FIELDS if o.env], ids=lambda o: o.name)
def test_every_environment_variable_and_config_key_sets_its_setting(declaration):
    text, value = TEXT[declaration.kind]
    from_environ = merged_values(None, None, {declaration.env[0]: text})[declaration.name]
    assert from_environ == (declaration.bokeh_reading(value) if declaration.bokeh_reading else value)
    assert merged_values(None, {declaration.config_key: text}, {})[declaration.name] == value


def test_a_field_written_optional_is_read_as_its_type():
    @dataclass(frozen=True)
    class Typed:
        count: Optional[int] = option(None, "a count")  # the old spelling of int | None
        names: tuple[int, ...] = option((), "numbers")

    declarations = declared(Typed)
    assert declarations["count"].read("7", "X") == 7
    assert declarations["count"].read(None, "X") is None
    assert declarations["names"].read("1, 2", "X") == (1, 2)
    with pytest.raises(SettingsError, match=r"count \(from X\): expected an integer"):
        declarations["count"].read("seven", "X")


def test_a_field_of_a_type_without_a_reader_fails_at_declaration():
    @dataclass(frozen=True)
    class Typed:
        ratio: float = option(0.5, "a ratio")

    with pytest.raises(TypeError, match="float"):
        declared(Typed)


def test_a_field_without_a_declaration_fails():
    @dataclass(frozen=True)
    class Typed:
        plain: int = 1

    with pytest.raises(TypeError, match="Typed.plain is not declared"):
        declared(Typed)


def _serve_parser() -> argparse.ArgumentParser:
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["serve"]


def test_every_flag_and_argument_says_its_default():
    actions = [a for a in _serve_parser()._actions if a.help != argparse.SUPPRESS and a.dest != "help"]
    assert len(actions) > len(FIELDS)
    assert [a.dest for a in actions if "(default: " not in (a.help or "")] == []


def test_every_setting_with_a_flag_has_exactly_it_and_the_rest_are_the_commands_own():
    by_dest = {a.dest: a.option_strings for a in _serve_parser()._actions}
    for declaration in OPTIONS.values():
        if declaration.flag:
            assert by_dest[declaration.name] == [*declaration.flags] + (
                [f"--no-{declaration.flags[0][2:]}"] if declaration.kind is bool and declaration.default else [])
        else:
            assert declaration.name not in by_dest
    commands_own = set(by_dest) - set(OPTIONS) - {"help", "files"}
    assert commands_own == {"unix_socket", "num_procs", "glob", "show", "log_file", "log_format",
                            "ssl_certfile", "ssl_keyfile", "args", "oauth_secret_flag"}


@pytest.fixture
def no_bokeh_environment(monkeypatch):
    for name in [k for k in os.environ if k.startswith("BOKEH_")]:
        monkeypatch.delenv(name)


def test_flags_give_typed_values_and_paths_are_made_absolute(no_bokeh_environment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    settings, overrides = _settings_from_args(_serve_parser().parse_args([
        "--keep-alive", "10", "--websocket-compression-level", "3", "--include-headers", "A", "B",
        "--allow-websocket-origin", "a.com", "--allow-websocket-origin", "b.com:81", "--state-dir", "state",
        "--no-reattach-expired-tokens", "--metrics", "--session-ids", "unsigned"]))
    assert (settings.keep_alive, settings.websocket_compression_level) == (10, 3)
    assert settings.include_headers == ("A", "B")
    assert settings.allow_websocket_origin == ("a.com", "b.com:81")
    assert settings.state_dir == str(tmp_path / "state")
    assert (settings.reattach_expired_tokens, settings.metrics, settings.use_xheaders) == (False, True, False)
    assert "use_xheaders" not in overrides and "prefix" not in overrides  # absent flags are unset


def test_workers_come_from_the_environment_and_num_procs(no_bokeh_environment, monkeypatch):
    monkeypatch.setenv("BOKEH_FLASK_WORKERS", "3")
    assert _settings_from_args(_serve_parser().parse_args([]))[0].workers == 3
    assert _settings_from_args(_serve_parser().parse_args(["--num-procs", "2"]))[0].workers == 2


def test_the_gunicorn_master_reads_only_the_settings_gunicorn_uses():
    environ = {"BOKEH_DEFAULT_SERVER_PORT": "5100", "BOKEH_FLASK_WORKERS": "2", "BOKEH_AUTH_MODULE": "/nope.py",
               "BOKEH_SIGN_SESSIONS": "yes", "BOKEH_FLASK_METRICS": "1", "UNRELATED": "x"}
    assert master_environ(environ) == {"BOKEH_DEFAULT_SERVER_PORT": "5100", "BOKEH_FLASK_WORKERS": "2",
                                       "BOKEH_FLASK_METRICS": "1"}
    settings = build_settings(environ=master_environ(environ))  # no auth module, no signing: no error
    assert (settings.port, settings.workers, settings.metrics) == (5100, 2, True)
