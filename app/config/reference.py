"""The README's settings table, made from the declarations (:mod:`.options`).

``python -m bokeh_flask.app.config.reference`` prints it; ``... --write README.md``
replaces the table between :data:`BEGIN` and :data:`END` in that file. tests/core test that
the README holds exactly what this prints, so a new setting's row cannot be forgotten.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .declare import Option
from .options import OPTIONS

BEGIN = ("<!-- settings table: made from app/config/options.py by "
         "`python -m bokeh_flask.app.config.reference --write README.md` -->")
END = "<!-- end of settings table -->"
_HEAD = ("| Setting | CLI flag | Environment | Flask config | `--use-config` key | Default | What it does |\n"
         "|---|---|---|---|---|---|---|")


def _code(*texts: str) -> str:
    return ", ".join(f"`{text}`" for text in texts).replace("|", "\\|")


def _prose(text: str) -> str:
    """Markdown for plain text: a ``|`` would end the cell and ``<x>`` would be a tag;
    spans in backticks stay as they are."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(part if i % 2 else part.replace("<", "\\<") for i, part in enumerate(parts))


def _flag(declaration: Option) -> str:
    if not declaration.flag:
        return ""
    flag = declaration.flags[0]
    cli = declaration.cli
    if declaration.kind is bool and "nargs" not in cli:
        return _code(flag, f"--no-{flag[2:]}") if declaration.default else _code(flag)
    value = cli.get("metavar") or "|".join(cli.get("choices", ())) or declaration.name.upper()
    if cli.get("nargs") == "+":
        value = f"{value} ..."
    elif cli.get("nargs") == "*":
        value = f"[{value} ...]"
    return _code(f"{flag} {value}")


def settings_table() -> str:
    """One row per setting: its names in each place, its default and what it does."""
    rows = [_HEAD]
    for declaration in OPTIONS.values():
        cells = (_code(declaration.name), _flag(declaration), _code(*declaration.env),
                 _code(declaration.config_key),
                 _code(declaration.config_file_key) if declaration.config_file_key else "",
                 _prose(declaration.default_text), _prose(declaration.help))
        rows.append(f"| {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


def replace_table(text: str) -> str:
    """``text`` (the README) with the table between the markers made anew."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{settings_table()}{text[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bokeh_flask.app.config.reference",
                                     description="Print the README's settings table, or write it.")
    parser.add_argument("--write", metavar="README", help="replace the table between the markers in this file")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(settings_table())
        return 0
    with open(args.write, encoding="utf-8") as file:
        text = file.read()
    with open(args.write, "w", encoding="utf-8") as file:
        file.write(replace_table(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
