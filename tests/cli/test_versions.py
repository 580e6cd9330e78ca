"""Unsupported Python or Bokeh: refused at install or at start-up with one line naming the
supported range, never a traceback at the first request. Inside the range, what CI does not
test (a Bokeh pre-release, a Python newer than the newest tested) starts with one warning line.

A Bokeh outside the range is simulated the way pip would leave it: a ``bokeh-3.5.0.dist-info``
found first on the path, so ``importlib.metadata`` reports 3.5.0 as installed.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from bokeh_flask.app.apps.versions import (
    NEWEST_TESTED_PYTHON,
    OLDEST_PYTHON,
    SUPPORTED_BOKEH,
    TESTED_BOKEH_PRERELEASE,
    UnsupportedVersion,
    check_supported,
    is_prerelease,
    version_tuple,
)
from tests.support.cli import HELLO, clean_env, run_cli
from tests.support.servers import BIN, ROOT, launch

REFUSAL = "bokeh-flask supports Bokeh >=3.6,<4.1"


def fake_bokeh(tmp_path: Path, version: str) -> dict:
    """An environment whose ``importlib.metadata.version("bokeh")`` is ``version``."""
    dist = tmp_path / f"bokeh-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: bokeh\nVersion: {version}\n")
    return clean_env(PYTHONPATH=str(tmp_path))


@pytest.mark.parametrize("version", ["3.5.2", "4.1.0", "4.1.0.dev1", "5.0.0"])
def test_cli_refuses_an_unsupported_bokeh_with_one_line(tmp_path, version):
    result = run_cli("serve", str(HELLO), env=fake_bokeh(tmp_path, version), timeout=30)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"bokeh-flask: error: {REFUSAL}; Bokeh {version} "
                     "is installed (pip install 'bokeh>=3.6,<4.1')"], result.stderr


def test_a_bokeh_prerelease_starts_with_one_warning_line(tmp_path):
    """The installed Bokeh reads as the pre-release (its metadata, as pip leaves it): the
    server starts, serves, and says so once, not once per worker."""
    server = launch("cli", apps=[HELLO], env=fake_bokeh(tmp_path, "4.0.0.dev9"), args=["--num-procs", "2"])
    try:
        assert requests.get(f"{server.url}/hello", timeout=10).status_code == 200
        notices = [line for line in server.log_text().splitlines() if "pre-release" in line]
    finally:
        server.stop()
    assert notices == [f"bokeh-flask: warning: Bokeh 4.0.0.dev9 is a pre-release; the one bokeh-flask "
                       f"is tested with is {TESTED_BOKEH_PRERELEASE}"], notices


def test_gunicorn_worker_refuses_an_unsupported_bokeh_with_one_line(tmp_path):
    env = fake_bokeh(tmp_path, "3.5.2")
    env["BOKEH_APPS"] = str(HELLO)
    result = subprocess.run([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b", "127.0.0.1:0",
                             "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"bokeh-flask: error: {REFUSAL}; Bokeh 3.5.2 is installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_supported_ranges_match_pyproject():
    """No upper cap on Python: nothing newer is known broken, so it gets a warning, not a refusal."""
    text = (ROOT / "pyproject.toml").read_text()
    (bk_lo, bk_hi) = SUPPORTED_BOKEH
    assert f'requires-python = ">={OLDEST_PYTHON[0]}.{OLDEST_PYTHON[1]}"\n' in text
    assert f'"bokeh>={bk_lo[0]}.{bk_lo[1]},<{bk_hi[0]}.{bk_hi[1]}"' in text


def test_readme_matrix_names_the_newest_tested_python_and_the_prerelease():
    text = (ROOT / "README.md").read_text()
    newest = f"{NEWEST_TESTED_PYTHON[0]}.{NEWEST_TESTED_PYTHON[1]}"
    assert f"Python 3.10 to {newest}" in text and f"tested on ({newest})" in text
    assert f"the Bokeh 4.0 pre-release {TESTED_BOKEH_PRERELEASE}" in text
    assert f"| {TESTED_BOKEH_PRERELEASE} (pinned" in text


def test_the_ci_lanes_pin_the_prerelease_the_notice_names():
    """A bump of the pre-release lane (.ci/run's ``BOKEH_SPEC=bokeh==...``) is a bump of
    ``TESTED_BOKEH_PRERELEASE`` too, so the start-up notice says what CI tested."""
    pins = re.findall(r"BOKEH_SPEC=bokeh==(\S+)", (ROOT / ".ci" / "run").read_text())
    assert all(pin == TESTED_BOKEH_PRERELEASE for pin in pins), pins


def test_running_interpreter_and_bokeh_are_supported():
    check_supported()


@pytest.mark.parametrize("python, bokeh, warning", [
    ((3, 10, 0), "3.6.0", None), ((3, 13, 9), "3.10.2", None), ((3, 12, 1), "3.10.2.post1", None),
    ((3, 14, 0), "3.10.2", "Python 3.14.0 is newer than the newest Python bokeh-flask is tested on (3.13)"),
    ((3, 15, 0), "3.10.2", "Python 3.15.0 is newer"),
    ((3, 12, 1), "4.0.0.dev8", f"Bokeh 4.0.0.dev8 is a pre-release; the one bokeh-flask is tested with is "
                               f"{TESTED_BOKEH_PRERELEASE} (this one)"),
    ((3, 12, 1), "3.11.0rc1", "Bokeh 3.11.0rc1 is a pre-release"),
    ((3, 12, 1), "4.0.0", "Bokeh 4.0.0 is newer than the newest release bokeh-flask is tested with (3.10.x)"),
])
def test_supported_but_untested_is_one_warning(python, bokeh, warning):
    notices = check_supported(python, bokeh)
    assert len(notices) == (warning is not None) and all(warning in notice for notice in notices), notices


@pytest.mark.parametrize("python, bokeh", [
    ((3, 9, 18), "3.9.2"), ((3, 12, 1), "3.5.2"), ((3, 12, 1), "4.1.0"), ((3, 12, 1), "4.1.0.dev1"),
])
def test_outside_the_range_is_refused(python, bokeh):
    with pytest.raises(UnsupportedVersion, match="supports (Python|Bokeh) >="):
        check_supported(python, bokeh)


@pytest.mark.parametrize("version, pre", [
    ("4.0.0.dev8", True), ("3.11.0rc1", True), ("4.0.0a1", True), ("4.0.0b2", True),
    ("3.10.2", False), ("3.10.2.post1", False), ("3.10.2+local", False),
])
def test_is_prerelease(version, pre):
    assert is_prerelease(version) is pre


def test_version_tuple():
    assert version_tuple("3.10.2") == (3, 10, 2)
    assert version_tuple("3.11.0rc1") == (3, 11, 0)
    assert version_tuple("3.9.3.dev4") == (3, 9, 3)
    assert version_tuple("garbage") == ()


def older_python() -> str | None:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(pyenv.glob("3.9.*/bin/python"))
    return str(found[-1]) if found else None


@pytest.mark.skipif(older_python() is None, reason="no Python 3.9 interpreter on this machine")
def test_pip_refuses_to_install_on_python_39(tmp_path):
    result = subprocess.run([older_python(), "-m", "pip", "install", "--dry-run", "--no-deps",
                             "--target", str(tmp_path), str(ROOT)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "requires a different Python" in result.stderr + result.stdout, result.stderr[-2000:]
