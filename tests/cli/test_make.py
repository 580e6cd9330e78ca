"""The README's make targets as a user meets them: pip runs again only when pyproject.toml
changed, and ``PYTHON=python3.X`` finds pyenv's interpreter where its shim refuses to run.
``make -n`` prints what make would run without running it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support.servers import ROOT


def make_dry_run(*args: str) -> str:
    # a run under `make test BOKEH=3.6` (CI's lanes) passes its variables down in MAKEFLAGS
    inherited = ("PYENV_VERSION", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL", "BOKEH", "BOKEH_SPEC")
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k not in inherited})
    return done.stdout + done.stderr


def test_install_reruns_pip_only_when_pyproject_changed(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    stamp = venv / ".installed-serve"
    stamp.touch()
    assert "pip install" not in make_dry_run("install", f"VENV={venv}", f"PYTHON={sys.executable}")
    older = (ROOT / "pyproject.toml").stat().st_mtime - 60
    os.utime(stamp, (older, older))
    assert f"{venv}/bin/pip install -e '.[brotli]'" in make_dry_run("install", f"VENV={venv}",
                                                                     f"PYTHON={sys.executable}")


def test_python_x_y_finds_pyenvs_interpreter(tmp_path):
    if shutil.which("make") is None or shutil.which("pyenv") is None:
        pytest.skip("needs make and pyenv")
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    output = make_dry_run("install", f"VENV={tmp_path / 'venv'}", f"PYTHON=python{minor}")
    assert f'test -n "{minor}"' in output, output  # make found an interpreter of that version
    venv_line = next(line for line in output.splitlines() if "-m venv" in line)
    assert f"/versions/{minor}." in venv_line, output


def test_a_python_that_is_not_there_says_what_to_pass(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "install", f"VENV={tmp_path / 'venv'}", "PYTHON=python3.99"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "make: python3.99 is not a Python interpreter; give one that runs" in done.stdout + done.stderr


def test_test_install_pins_panel_for_the_newest_bokeh_and_leaves_it_to_pip_with_bokeh(tmp_path):
    """Without BOKEH the test extra (Panel 1.10 from Python 3.12 on); with BOKEH=3.x the
    test-tools extra beside the newest Panel for that Bokeh, as Panel 1.10 refuses Bokeh < 3.10."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    def pip_line(*args: str) -> list[str]:
        output = make_dry_run("install-test", f"VENV={venv}", f"PYTHON={sys.executable}", *args)
        return next(line.split() for line in output.splitlines() if " install -e " in line)

    assert pip_line() == [f"{venv}/bin/pip", "install", "-e", "'.[test]'"]
    assert pip_line("BOKEH=3.6") == [f"{venv}/bin/pip", "install", "-e", "'.[test-tools]'", "'panel>=1.5'",
                                     "'bokeh==3.6.*'"]
