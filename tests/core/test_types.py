"""The type check: mypy, strict, on app/ and blueprints/ (``[tool.mypy]`` in pyproject.toml),
from the test virtualenv, whose test extra installs mypy and the stub packages."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.support.servers import IN_CI, ROOT


@pytest.mark.timeout(900)
def test_mypy_passes():
    if importlib.util.find_spec("mypy") is None:
        if IN_CI:
            pytest.fail("mypy is not installed: the test extra (pip install -e '.[test]') brings it")
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    # a first run, with no .mypy_cache yet, takes about half a minute
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, f"mypy found errors:\n{done.stdout}{done.stderr}"
