"""The wheel a user installs: built from the checkout, holding every module and data file of
it, installed (not editable) in a fresh virtualenv, and serving pages from there.

The other suites run on the editable install, which imports the checkout itself: a package
missing from pyproject.toml's hand-written list, or a data file outside package-data, only
shows in a wheel. One wheel and one virtualenv per session; the virtualenv gets its
dependencies from the index (at the versions of the virtualenv running the tests), which
takes most of the time. Servers run from a folder outside the checkout, so nothing they
import can come from it. Building needs the package index (for setuptools and the
dependencies): without it the tests skip locally and fail under CI=true.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.support.servers import IN_CI, ROOT, free_port, spawn
from tests.support.wire import BokehWS, page_token

# building and installing take a while on a cold pip cache
pytestmark = pytest.mark.timeout(900)

#: what a build leaves in a checkout, which a fresh clone lacks (see .gitignore)
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", ".venv-*", "__pycache__", "*.pyc", "*.egg-info",
                                     ".pytest_cache", ".hypothesis", "build", "dist")
#: folders whose every file is data (package-data "**/*"); elsewhere only modules ship
DATA_FOLDERS = ("templates", "examples")
#: setuptools' and distutils' warnings (pip's own "WARNING:" lines are about the index)
BUILD_WARNING = re.compile(r"Warning: |\bwarning: ")


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI must build and install the wheel")
    pytest.skip(reason)


def run(command: list, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def index_unreachable(tmp: Path) -> str | None:
    """pip's message when the package index cannot give setuptools, else None: a failed
    build or install is then this machine's, not the project's."""
    probe = run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", tmp / "probe", "setuptools"],
                cwd=tmp, timeout=120)
    return None if probe.returncode == 0 else probe.stderr.strip().splitlines()[-1]


def package_dirs() -> dict[str, str]:
    """pyproject.toml's package-dir: the checkout's folder of each package it maps."""
    text = (ROOT / "pyproject.toml").read_text()
    line = re.search(r"^package-dir = \{(.*)\}$", text, re.MULTILINE)
    assert line, "pyproject.toml: [tool.setuptools] package-dir is no longer a one-line table"
    return dict(re.findall(r'"([\w.]+)" = "([\w./-]+)"', line.group(1)))


def checkout_files() -> dict[str, str]:
    """Every file the wheel must hold, as {path in the wheel: path in the checkout}: each
    module of the mapped folders, and each file of the data folders."""
    expected = {}
    for package, folder in package_dirs().items():
        pattern = "*" if folder in DATA_FOLDERS else "*.py"
        for path in (ROOT / folder).rglob(pattern):
            relative = path.relative_to(ROOT / folder)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
                expected[f"{package.replace('.', '/')}/{relative.as_posix()}"] = f"{folder}/{relative.as_posix()}"
    return expected


def clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user of the virtualenv: no setting of ours, nothing that points
    Python at the checkout or the test virtualenv."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BOKEH_", "FLASK_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def wheel_build(tmp_path_factory) -> tuple[Path, str]:
    """The wheel and pip's build log, built from a copy of the checkout's sources (a build in
    the checkout would reuse whatever an earlier build left in build/)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # else distutils warns that it skips byte-compiling
    build = run([sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "--wheel-dir", tmp / "dist", source],
                cwd=tmp, env=env)
    if build.returncode != 0:
        reason = index_unreachable(tmp)
        if reason:
            unavailable(f"cannot build the wheel without the package index: {reason}")
        pytest.fail(f"pip wheel failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}")
    (wheel,) = (tmp / "dist").glob("bokeh_flask-*.whl")
    return wheel, build.stdout + build.stderr


@pytest.fixture(scope="session")
def wheel(wheel_build) -> Path:
    return wheel_build[0]


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory) -> Iterator[Path]:
    """A fresh virtualenv with the wheel installed (not editable), its dependencies pinned to
    the versions of the virtualenv running the tests; removed afterwards (pytest keeps its
    last three sessions' folders, about 180 MB each with a virtualenv)."""
    tmp = tmp_path_factory.mktemp("venv")
    created = run([sys.executable, "-m", "venv", tmp / "venv"], cwd=tmp, timeout=120)
    if created.returncode != 0:
        unavailable(f"python -m venv failed: {created.stderr.strip()}")
    freeze = run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], cwd=tmp, timeout=120)
    # pip takes no direct references (name @ url) as constraints
    (tmp / "constraints.txt").write_text("\n".join(line for line in freeze.stdout.splitlines() if " @ " not in line))
    python = tmp / "venv" / "bin" / "python"
    install = run([python, "-m", "pip", "install", "--constraint", tmp / "constraints.txt", wheel], cwd=tmp)
    if install.returncode != 0:
        reason = index_unreachable(tmp)
        if reason:
            unavailable(f"cannot install the wheel's dependencies without the package index: {reason}")
        pytest.fail(f"pip install of the wheel failed:\n{install.stdout[-4000:]}\n{install.stderr[-4000:]}")
    yield tmp / "venv"
    shutil.rmtree(tmp / "venv")


@pytest.fixture
def outside(tmp_path) -> Path:
    """A working directory outside the checkout."""
    assert ROOT not in tmp_path.resolve().parents
    return tmp_path


def installed_examples(venv: Path) -> Path:
    (examples,) = (venv / "lib").glob("python3.*/site-packages/bokeh_flask/examples")
    return examples


def test_wheel_holds_every_module_and_data_file_of_the_checkout(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = checkout_files()
    missing = sorted(f"{source} (as {name})" for name, source in expected.items() if name not in names)
    assert not missing, ("the wheel lacks these files of the checkout; a module's package belongs in "
                         "pyproject.toml's [tool.setuptools] packages, a data file in its package-data:\n  "
                         + "\n  ".join(missing))
    extra = sorted(name for name in names if name not in expected and ".dist-info/" not in name)
    assert not extra, "the wheel holds files that are not the checkout's sources:\n  " + "\n  ".join(extra)


def test_wheel_builds_without_warnings(wheel_build):
    _, log = wheel_build
    warnings = [line.strip() for line in log.splitlines() if BUILD_WARNING.search(line)]
    assert not warnings, "building the wheel warned:\n" + "\n".join(warnings)


def test_wheel_declares_the_console_script(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "bokeh-flask = bokeh_flask.app.process.cli:main" in text


def test_every_module_imports_from_the_wheel_without_extras(venv, outside):
    """Each module of the installed package imports (the examples are apps, run by Bokeh),
    and from the virtualenv, not the checkout."""
    script = ("import importlib, pkgutil, bokeh_flask\n"
              "print('bokeh_flask', bokeh_flask.__file__)\n"
              "for module in pkgutil.walk_packages(bokeh_flask.__path__, 'bokeh_flask.'):\n"
              "    if not module.name.startswith(('bokeh_flask.examples', 'bokeh_flask.templates')):\n"
              "        print(module.name, importlib.import_module(module.name).__file__)\n")
    result = run([venv / "bin" / "python", "-c", script], cwd=outside, env=clean_env(venv), timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    files = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert {"bokeh_flask.app.process.cli", "bokeh_flask.blueprints.extension",
            "bokeh_flask.app.sessions.server"} <= set(files)
    elsewhere = {name: file for name, file in files.items() if not Path(file).is_relative_to(venv)}
    assert not elsewhere, f"imported from outside the virtualenv: {elsewhere}"


@pytest.mark.parametrize("command, shows", [(["--help"], "serve"), (["serve", "--help"], "--allow-websocket-origin")])
def test_console_script_runs_from_the_wheel(venv, outside, command, shows):
    result = run([venv / "bin" / "bokeh-flask", *command], cwd=outside, env=clean_env(venv), timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    assert shows in result.stdout


def serve(command: list, venv: Path, cwd: Path, port: int, env: dict | None = None):
    return spawn("wheel", [str(c) for c in command], port, {**clean_env(venv), **(env or {})},
                 ready=lambda status: status < 500, cwd=cwd)


def assert_serves_app(base_url: str, app: str) -> None:
    """The app's page carries a session token, and its websocket gives the document."""
    token = page_token(base_url, app)
    with BokehWS(f"{base_url.replace('http', 'ws', 1)}/{app}/ws", token) as ws:
        assert ws.ack.msgtype == "ACK"
        assert ws.pull().content["doc"]["roots"]


def test_cli_serves_an_example_app_from_the_wheel(venv, outside):
    sliders = installed_examples(venv) / "sliders.py"
    port = free_port()
    server = serve([venv / "bin" / "bokeh-flask", "serve", sliders, "--address", "127.0.0.1", "--port", port],
                   venv, outside, port)
    try:
        assert_serves_app(server.url, "sliders")
        index = requests.get(server.url + "/", timeout=10, allow_redirects=False)  # one app: the index sends there
        assert index.status_code == 302 and index.headers["Location"].rstrip("/").endswith("/sliders"), index.headers
    finally:
        server.stop()


def test_cli_serves_the_bundled_examples_from_the_wheel(venv, outside):
    """No app paths: the examples installed with the package, a directory app's static files
    and templates included."""
    port = free_port()
    server = serve([venv / "bin" / "bokeh-flask", "serve", "--address", "127.0.0.1", "--port", port],
                   venv, outside, port)
    try:
        index = requests.get(server.url + "/", timeout=10)
        assert index.status_code == 200
        for app in ("sliders", "streaming", "dashboard"):
            assert f"/{app}" in index.text, index.text[:500]
        assert_serves_app(server.url, "dashboard")
        assert 'id="dashboard-heading"' in requests.get(server.url + "/dashboard/", timeout=10).text  # its template
        style = requests.get(server.url + "/dashboard/static/style.css", timeout=10)
        assert style.status_code == 200, style.text[:500]
        assert style.text == (ROOT / "examples" / "dashboard" / "static" / "style.css").read_text()
    finally:
        server.stop()


def test_gunicorn_serves_from_the_wheel_with_a_copy_of_gunicorn_conf(venv, outside):
    """The README's production command, with copies of gunicorn.conf.py and wsgi.py (what a
    deployment keeps next to its apps) and everything else from the installed package."""
    for name in ("gunicorn.conf.py", "wsgi.py"):
        shutil.copy(ROOT / name, outside / name)
    port = free_port()
    server = serve([venv / "bin" / "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"],
                   venv, outside, port,
                   env={"BOKEH_APPS": str(installed_examples(venv) / "sliders.py"),
                        "BOKEH_DEFAULT_SERVER_PORT": str(port)})
    try:
        assert_serves_app(server.url, "sliders")
        assert "Using worker: bokeh_flask.app.process.worker.BokehGeventWorker" in server.log_text(), server.log_text()
    finally:
        server.stop()
