"""An app that fails to load, at start (issue 15 item 3): the CLI stops before any server
starts with one block (the app, the file and line, the message, the traceback once) and
exit status 2; gunicorn and ``flask run`` print the same block once and stop."""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.cli import clean_env, run_cli
from tests.support.servers import BIN, ROOT, free_port, launch

GOOD = "from bokeh.io import curdoc\nfrom bokeh.models import Div\ncurdoc().add_root(Div(text='ok'))\n"
SYNTAX_ERROR = "from bokeh.io import curdoc\n\nx = (1,\ncurdoc().add_root(None)\n"


def broken_apps(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (app path, the file and line the block must name, the message it must carry)."""
    script = tmp_path / "broken.py"
    script.write_text(SYNTAX_ERROR)
    theme_app = tmp_path / "theme_app"
    theme_app.mkdir()
    (theme_app / "main.py").write_text(GOOD)
    (theme_app / "theme.yaml").write_text("attrs:\n  Div: [\n")
    template_app = tmp_path / "template_app"
    (template_app / "templates").mkdir(parents=True)
    (template_app / "main.py").write_text(GOOD)
    (template_app / "templates" / "index.html").write_text("{% block x %}\n<p>{{ foo </p>\n")
    return {
        "syntax": (script, f'File "{script}", line 3', "SyntaxError: '(' was never closed"),
        "theme": (theme_app, f'File "{theme_app / "theme.yaml"}", line 3', "ParserError"),
        "template": (template_app, f'File "{template_app / "templates" / "index.html"}", line 2',
                     "TemplateSyntaxError"),
    }


def assert_one_block(stderr: str, app: Path, where: str, message: str) -> None:
    assert stderr.count(f"could not load app {app}") == 1, stderr
    assert stderr.count(where) >= 1, stderr
    assert message in stderr, stderr
    # the traceback once (a syntax error's caret display has no "Traceback" header)
    assert stderr.count("Traceback (most recent call last)") <= 1, stderr


@pytest.mark.parametrize("case", ["syntax", "theme", "template"])
def test_the_cli_stops_before_serving_with_one_block_and_status_2(tmp_path, case):
    app, where, message = broken_apps(tmp_path)[case]
    result = run_cli("serve", str(app), "--port", str(free_port()), timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"bokeh-flask: error: could not load app {app}\n  {where}\n"), result.stderr
    assert_one_block(result.stderr, app, where, message)
    assert "Starting gunicorn" not in result.stderr and "running at" not in result.stderr


def test_the_syntax_error_block_shows_the_line_and_caret(tmp_path):
    app, where, _ = broken_apps(tmp_path)["syntax"]
    stderr = run_cli("serve", str(app), timeout=60).stderr
    assert textwrap.dedent("""\
        could not load app {app}
          {where}
          SyntaxError: '(' was never closed

          {where}
            x = (1,
                ^
        SyntaxError: '(' was never closed
        """).format(app=app, where=where) in stderr


@pytest.mark.parametrize("kind", ["gunicorn", "flask"])
def test_gunicorn_and_flask_run_print_the_block_once_and_stop(tmp_path, kind):
    app, where, message = broken_apps(tmp_path)["syntax"]
    port = free_port()
    command = ([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}", "wsgi:app"]
               if kind == "gunicorn" else
               [str(BIN / "flask"), "--app", "wsgi", "run", "--host", "127.0.0.1", "--port", str(port)])
    result = subprocess.run(command, cwd=ROOT, env=clean_env(BOKEH_APPS=str(app)), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert_one_block(output, app, where, message)
    assert "Exception in worker process" not in output, output


def test_a_good_app_still_starts(tmp_path):
    """The check runs in a forked child: the CLI goes on to serve when the apps load."""
    app = tmp_path / "fine.py"
    app.write_text(GOOD)
    server = launch("cli", apps=[app], wait_path="/fine")
    try:
        import requests

        assert requests.get(server.url + "/fine", timeout=30).status_code == 200
    finally:
        server.stop()
