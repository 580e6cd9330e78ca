"""Where relative app paths resolve: against the host app's ``root_path`` when one is given
(``BokehServer`` passes the Flask app's), else against the current directory (the
standalone server's ``BOKEH_APPS``); errors name the absolute path and what it was
relative to."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bokeh_flask.app.apps.sources import build_applications
from bokeh_flask.app.config.settings import SettingsError

APP = "from bokeh.io import curdoc\nfrom bokeh.models import Div\ncurdoc().add_root(Div(text='hi'))\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp/project/hello.py`` and ``tmp/project/dirapp/main.py``, with the current
    directory elsewhere (``tmp/elsewhere``)."""
    root = tmp_path / "project"
    (root / "dirapp").mkdir(parents=True)
    (root / "hello.py").write_text(APP)
    (root / "dirapp" / "main.py").write_text(APP)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return root


@pytest.mark.parametrize(("apps", "keys"), [("hello.py", ["/hello"]),
                                           (["hello.py", "dirapp"], ["/hello", "/dirapp"]),
                                           ({"/h": "hello.py"}, ["/h"])])
def test_relative_paths_resolve_against_root_path(project: Path, apps, keys: list[str]) -> None:
    assert list(build_applications(apps, root_path=str(project))) == keys


def test_missing_relative_path_names_absolute_path_and_root_path(project: Path) -> None:
    with pytest.raises(SettingsError) as info:
        build_applications({"/x": "examples/sliders.py"}, root_path=str(project))
    assert str(info.value) == (
        f"app path does not exist: {project / 'examples' / 'sliders.py'} "
        f"('examples/sliders.py' is relative to the app's root_path {project})")


def test_without_root_path_relative_paths_resolve_against_current_directory(project: Path) -> None:
    with pytest.raises(SettingsError, match=r"relative to the current directory"):
        build_applications(["hello.py"])
    os.chdir(project)
    assert list(build_applications(["hello.py"])) == ["/hello"]


def test_bokeh_apps_resolve_against_current_directory_even_with_root_path(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("BOKEH_APPS", "hello.py")
    assert list(build_applications(None, root_path="/nonexistent")) == ["/hello"]


def test_absolute_paths_ignore_root_path(project: Path) -> None:
    assert list(build_applications([str(project / "hello.py")], root_path="/nonexistent")) == ["/hello"]
