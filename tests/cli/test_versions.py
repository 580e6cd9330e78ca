"""Unsupported Python or Bokeh: refused at install or at start-up with one line naming the
supported range, never a traceback at the first request.

A Bokeh outside the range is simulated the way pip would leave it: a ``bokeh-3.5.0.dist-info``
found first on the path, so ``importlib.metadata`` reports 3.5.0 as installed.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bokeh_flask.app.apps.versions import (
    SUPPORTED_BOKEH,
    SUPPORTED_PYTHON,
    UnsupportedVersion,
    check_supported,
    version_tuple,
)
from tests.support.cli import HELLO, clean_env, run_cli
from tests.support.servers import BIN, ROOT


def fake_bokeh(tmp_path: Path, version: str) -> dict:
    """An environment whose ``importlib.metadata.version("bokeh")`` is ``version``."""
    dist = tmp_path / f"bokeh-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: bokeh\nVersion: {version}\n")
    return clean_env(PYTHONPATH=str(tmp_path))


@pytest.mark.parametrize("version", ["3.5.2", "3.11.0", "4.0.0"])
def test_cli_refuses_an_unsupported_bokeh_with_one_line(tmp_path, version):
    result = run_cli("serve", str(HELLO), env=fake_bokeh(tmp_path, version), timeout=30)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"bokeh-flask: error: bokeh-flask supports Bokeh >=3.6,<3.11; Bokeh {version} "
                     "is installed (pip install 'bokeh>=3.6,<3.11')"], result.stderr


def test_gunicorn_worker_refuses_an_unsupported_bokeh_with_one_line(tmp_path):
    env = fake_bokeh(tmp_path, "3.5.2")
    env["BOKEH_APPS"] = str(HELLO)
    result = subprocess.run([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b", "127.0.0.1:0",
                             "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "bokeh-flask: error: bokeh-flask supports Bokeh >=3.6,<3.11; Bokeh 3.5.2 is installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_supported_ranges_match_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    (py_lo, py_hi), (bk_lo, bk_hi) = SUPPORTED_PYTHON, SUPPORTED_BOKEH
    assert f'requires-python = ">={py_lo[0]}.{py_lo[1]},<{py_hi[0]}.{py_hi[1]}"' in text
    assert f'"bokeh>={bk_lo[0]}.{bk_lo[1]},<{bk_hi[0]}.{bk_hi[1]}"' in text


def test_running_interpreter_and_bokeh_are_supported():
    check_supported()


@pytest.mark.parametrize("python, bokeh, ok", [
    ((3, 10, 0), "3.6.0", True), ((3, 13, 9), "3.10.2", True), ((3, 9, 18), "3.9.2", False),
    ((3, 14, 0), "3.10.2", False), ((3, 12, 1), "3.5.2", False), ((3, 12, 1), "3.11.0rc1", False),
])
def test_check_supported(python, bokeh, ok):
    if ok:
        check_supported(python, bokeh)
    else:
        with pytest.raises(UnsupportedVersion, match="supports (Python|Bokeh) >="):
            check_supported(python, bokeh)


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
