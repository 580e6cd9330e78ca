"""Every flag of the installed Bokeh's ``bokeh serve --help`` is a flag of ``bokeh-flask
serve`` (issue 15 item 1), and the ones new in this round do what Bokeh's do:
``--use-config`` (Bokeh's YAML settings file) and ``--log-format``.

What each other flag does is tested where its feature is (tests/cli, tests/http, tests/ws ...);
this file makes a flag that a new Bokeh adds fail here until it is accepted or refused.
"""
from __future__ import annotations

import re
import subprocess

import requests

from tests.support.cli import HELLO, run_cli
from tests.support.servers import BIN, launch

_FLAG = re.compile(r"^\s{2}(--[a-z0-9][a-z0-9-]*)", re.M)


def flags_of(command: list[str]) -> set[str]:
    """The long options a ``--help`` text lists at the start of its option lines."""
    output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    return set(_FLAG.findall(output)) - {"--help"}


def test_every_bokeh_serve_flag_is_a_bokeh_flask_flag():
    bokeh = flags_of([str(BIN / "bokeh"), "serve", "--help"])
    ours = flags_of([str(BIN / "bokeh-flask"), "serve", "--help"])
    assert len(bokeh) >= 35, bokeh  # the help text was read
    assert sorted(bokeh - ours) == []


def test_use_config_sets_bokeh_settings_below_the_environment(tmp_path):
    config = tmp_path / "bokeh.yaml"
    config.write_text("sign_sessions: true\nsecret_key: " + "s" * 44 + "\nresources: cdn\n")
    server = launch("cli", apps=[HELLO], args=["--use-config", str(config)], wait_path="/hello")
    try:
        page = requests.get(server.url + "/hello", timeout=30)
        assert page.status_code == 200
        assert "cdn.bokeh.org" in page.text  # resources: cdn reached Bokeh itself
        # sign_sessions: an id the client makes up is refused, as with --session-ids signed
        forged = requests.get(server.url + "/hello?bokeh-session-id=made-up", timeout=30)
        assert forged.status_code == 403, forged.status_code
    finally:
        server.stop()


def test_log_format_shapes_the_servers_log_lines():
    server = launch("cli", apps=[HELLO], args=["--log-format", "FMT %(levelname)s|%(message)s",
                                               "--log-level", "debug"], wait_path="/hello")
    try:
        requests.get(server.url + "/hello", timeout=30)
        server.wait_for_log("FMT DEBUG|session ")
    finally:
        server.stop()


def test_a_bad_config_file_names_the_file():
    result = run_cli("serve", str(HELLO), "--use-config", "/nonexistent/bokeh.yaml", timeout=30)
    assert result.returncode == 2
    assert "--use-config: cannot read /nonexistent/bokeh.yaml" in result.stderr


def test_help_gives_every_flags_default():
    """Issue 23: ``bokeh-flask serve --help`` says what each flag does when it is not given."""
    output = subprocess.run([str(BIN / "bokeh-flask"), "serve", "--help"], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    blocks = re.split(r"\n(?=  \S)", output.split("\noptions:\n", 1)[1])
    assert len(blocks) >= 50, blocks
    missing = [block.split()[0] for block in blocks
               if "(default: " not in " ".join(block.split()) and not block.lstrip().startswith("-h")]
    assert missing == []
