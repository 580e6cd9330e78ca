"""README.md's "Inside an existing Flask app", run as written: its files go into a fresh
``myproject/``, its commands run (port 8000 swapped for a free one) from the folders the
README names, and chromium moves the embedded app's slider and sees Python's answer.

The commands run from the folder above ``myproject/`` are the ones that need app paths to
resolve against the Flask app's ``root_path`` rather than the current directory.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from tests.support.browser import assert_no_console_errors, wait_for_bokeh, wait_for_model
from tests.support.servers import BIN, ROOT, Server, free_port, spawn

SECTION = "### Inside an existing Flask app"
#: "`myproject/app.py`:" or "`myproject/app.py`, the host Flask app:" before a file's block
FILE_LEAD = re.compile(r"^`myproject/(?P<name>[\w/.]+)`[,:]")
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.S | re.M)
README_PORT = "8000"


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION) + len(SECTION)
    following = re.search(r"^##", text[start:], re.M)
    return text[start:start + following.start()] if following else text[start:]


def readme_blocks() -> list[tuple[str, str, str]]:
    """``(lead-in line, language, body)`` for each fenced block of the section."""
    section = readme_section()
    blocks = []
    for match in FENCE.finditer(section):
        before = section[:match.start()].rstrip("\n").rsplit("\n\n", 1)[-1]
        blocks.append((" ".join(before.split()), match["lang"], match["body"]))
    return blocks


def readme_files() -> dict[str, str]:
    files = {}
    for lead, _, body in readme_blocks():
        found = FILE_LEAD.match(lead)
        if found:
            files[found["name"]] = body
    return files


def readme_commands() -> list[tuple[str, str]]:
    """``(where, command)``: the bash blocks' lines; where is "project" for the block the
    README runs from ``myproject/``, "parent" for the one run from the folder above it."""
    commands = []
    for lead, lang, body in readme_blocks():
        if lang != "bash":
            continue
        if "from `myproject/`" in lead:
            where = "project"
        elif "from the folder above `myproject/`" in lead:
            where = "parent"
        else:
            raise AssertionError(f"a bash block with no folder named before it: {lead!r}")
        commands += [(where, line.strip()) for line in body.splitlines() if line.strip()]
    return commands


COMMANDS = readme_commands()


def test_readme_section_has_the_files_and_both_ways_to_run() -> None:
    assert set(readme_files()) == {"sliders.py", "app.py", "templates/index.html"}
    assert readme_files()["app.py"].startswith("from gevent import monkey; monkey.patch_all()")
    programs = sorted((where, shlex.split(command)[0]) for where, command in COMMANDS)
    assert programs == [("parent", "flask"), ("parent", "gunicorn"),
                        ("project", "flask"), ("project", "gunicorn")]


@pytest.fixture
def run_readme(tmp_path: Path):
    """Write the README's files into ``tmp/myproject`` and start one of its commands."""
    project = tmp_path / "myproject"
    for name, body in readme_files().items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(body)
    started: list[Server] = []

    def run(where: str, command: str) -> Server:
        port = free_port()
        argv = [arg.replace(README_PORT, str(port)) for arg in shlex.split(command)]
        assert argv != shlex.split(command), f"no port {README_PORT} to replace in {command!r}"
        argv[0] = str(BIN / argv[0])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
        env.update(PYTHONUNBUFFERED="1",
                   # gunicorn 23.1+ shares one control socket path per user between servers
                   GUNICORN_CMD_ARGS="--no-control-socket")
        server = spawn(argv[0].rsplit("/", 1)[-1], argv, port, env, ready=lambda s: s == 200,
                       cwd=project if where == "project" else tmp_path)
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w}: {c}" for w, c in COMMANDS])
def test_readme_host_app_embeds_a_working_bokeh_app(run_readme, page, where: str, command: str) -> None:
    server = run_readme(where, command)
    page.goto(server.url + "/")
    assert page.locator("h1").inner_text() == "My Flask site"
    wait_for_bokeh(page)
    wait_for_model(page, "status", "v === 'amplitude=1'")
    page.locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    # the Div's text is written only by the app's Python callback
    wait_for_model(page, "status", "v === 'amplitude=1.1'")
    assert_no_console_errors(page)
    assert "Traceback" not in server.log_text()
