"""Start-up mistakes a new user makes, each one line with the fix and exit 2 (gunicorn's
failed-boot exit for an app gunicorn imports itself), before any "Bokeh app running at"."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import bokeh
import pytest

from tests.support.auth import SIGNED_AUTH, WHOAMI
from tests.support.cli import HELLO, assert_one_line_error, clean_env, run_cli
from tests.support.servers import BIN, ROOT, free_port

NO_SECRET_HOST = Path(__file__).resolve().parent / "apps" / "no_secret_host.py"


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_port_in_use_is_one_line_at_once(taken_port):
    result = run_cli("serve", str(HELLO), "--address", "127.0.0.1", "--port", str(taken_port), timeout=30)
    assert_one_line_error(result, f"Cannot start Bokeh server, port {taken_port} is already in use")
    assert "--port" in result.stderr


def test_a_port_in_use_under_gunicorn_is_one_error_line(taken_port):
    done = subprocess.run([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
                           "-b", f"127.0.0.1:{taken_port}", "wsgi:app"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=clean_env(BOKEH_APPS=str(HELLO)))
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"bokeh-flask: error: Cannot start Bokeh server, port {taken_port} is already in use: "
                      "stop what uses it, or choose another port (--port N, or gunicorn's -b HOST:N)"]
    assert "Retrying" not in done.stderr and "Booting worker" not in done.stderr


def test_an_address_this_machine_lacks_is_one_line():
    result = run_cli("serve", str(HELLO), "--address", "192.0.2.123", "--port", str(free_port()), timeout=30)
    assert_one_line_error(result, "cannot listen on 192.0.2.123")


def test_a_directory_app_without_main_py_is_one_line(tmp_path):
    (tmp_path / "theme.yaml").write_text("")
    result = run_cli("serve", str(tmp_path), "--port", str(free_port()), timeout=60)
    assert_one_line_error(result, f"app directory {tmp_path} has no main.py or main.ipynb")


def test_an_auth_module_that_signs_cookies_needs_a_cookie_secret():
    result = run_cli("serve", str(WHOAMI), "--auth-module", str(SIGNED_AUTH), "--port", str(free_port()),
                     timeout=60)
    assert_one_line_error(result, "uses Tornado's signed cookies but no cookie secret is set")


@pytest.mark.parametrize("args, needle", [
    (["--num-procs", "2", "--workers", "3"], "--num-procs 2 and --workers 3 disagree"),
    (["--num-procs", "-1"], "--num-procs must be 0 (one worker per core) or more, got -1"),
])
def test_worker_flags_that_conflict_are_one_line(args, needle):
    assert_one_line_error(run_cli("serve", str(HELLO), *args, "--port", str(free_port()), timeout=30), needle)


def test_a_flask_login_app_without_a_secret_key_is_one_error_line():
    done = subprocess.run([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
                           "-b", f"127.0.0.1:{free_port()}", "--chdir", str(NO_SECRET_HOST.parent),
                           "no_secret_host:app"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=clean_env())
    assert done.returncode == 3, done.stderr  # gunicorn's "worker failed to boot"
    ours = [line for line in done.stderr.splitlines() if line.startswith("bokeh-flask: error:")]
    assert len(ours) == 1 and "set the Flask app's SECRET_KEY" in ours[0], done.stderr
    assert "Traceback" not in done.stderr and "running at" not in done.stderr


def test_version_names_bokeh_flask_bokeh_and_python():
    result = run_cli("--version", timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("bokeh-flask ") and f"(Bokeh {bokeh.__version__}," in result.stdout
    assert "Python 3." in result.stdout


def test_a_redis_flag_without_the_redis_package_names_the_extra(tmp_path):
    hidden = tmp_path / "redis"  # as on a machine where the redis package is not installed
    hidden.mkdir()
    (hidden / "__init__.py").write_text('raise ImportError("No module named \'redis\'")\n')
    result = run_cli("serve", str(HELLO), "--redis-url", "redis://127.0.0.1:6390/0", "--port", str(free_port()),
                     env=clean_env(PYTHONPATH=str(tmp_path)), timeout=30)
    assert_one_line_error(result, "--redis-url needs the redis package: pip install 'bokeh-flask[redis]'")


def test_metrics_work_with_a_plain_install():
    """prometheus-client is a dependency: ``--metrics`` needs no extra."""
    from importlib.metadata import requires

    assert any(r.startswith("prometheus-client") and "extra" not in r for r in requires("bokeh-flask") or [])
