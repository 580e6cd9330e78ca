"""Fixtures for the end-to-end HTTP view tests.

``server`` is re-declared with package scope (gunicorn and ``flask run``) so the whole folder
starts each kind once; it serves ``hello.py``, an app that raises (``http_raises.py``) and a
directory app with its own ``static/`` (``http_dirapp``).

``configured(name)`` starts (once per package, lazily) a gunicorn server with one of the
settings in :func:`configs`; all of them are stopped together at the end.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support.http import CUSTOM_ICO, SECRET_KEY
from tests.support.servers import APPS, Server, launch

HELLO = APPS / "hello.py"
RAISES = APPS / "http_raises.py"
DIRAPP = APPS / "http_dirapp"
HTTP_APPS = [HELLO, RAISES, DIRAPP]

JINJA_INDEX = """<!doctype html><title>jinja index</title>
<p id="prefix">prefix=[{{ prefix }}]</p>
<ul>{% for item in items %}<li><a href="{{ prefix }}{{ item }}">custom-{{ item }}</a></li>{% endfor %}</ul>
"""

TORNADO_INDEX = """<!doctype html><title>tornado index</title>
<p id="prefix">prefix=[{{ prefix }}]</p>
<ul>{% for item in items %}<li><a href="{{ prefix }}{{ item }}">tornado-{{ item }}</a></li>{% end %}</ul>
"""



def _settings(**values) -> dict:
    return {"BOKEH_FLASK_SETTINGS": json.dumps(values)}


def configs(assets: Path) -> dict[str, dict]:
    """Name -> ``launch`` keyword arguments for every non-default server the tests need."""
    return {
        # one app: the root redirects to it; also a custom favicon file
        "single": dict(apps=[HELLO], env={"BOKEH_ICO_PATH": str(assets / "custom.ico")}),
        # prefix /pre, two apps (index lists them with the prefix)
        "prefix": dict(apps=[HELLO, DIRAPP], env=_settings(prefix="/pre")),
        # no index page at all, and no favicon
        "no_index": dict(apps=[HELLO, DIRAPP],
                         env={**_settings(disable_index=True), "BOKEH_ICO_PATH": "none"}),
        # one app but always list it
        "no_redirect": dict(apps=[HELLO], env=_settings(disable_index_redirect=True)),
        "index_jinja": dict(apps=[HELLO, DIRAPP], env=_settings(index=str(assets / "jinja_index.html"))),
        "index_tornado": dict(apps=[HELLO, DIRAPP],
                              env=_settings(index=str(assets / "tornado_index.html"))),
        "signed": dict(apps=[HELLO], env={"BOKEH_SIGN_SESSIONS": "yes", "BOKEH_SECRET_KEY": SECRET_KEY}),
        "external": dict(apps=[HELLO], env={**_settings(session_ids="external-signed"),
                                            "BOKEH_SECRET_KEY": SECRET_KEY}),
        # BOKEH_SIGN_SESSIONS is a real boolean here: "no" means unsigned, no key needed
        "sign_no": dict(apps=[HELLO], env={"BOKEH_SIGN_SESSIONS": "no"}),
    }


@pytest.fixture(scope="package", params=["gunicorn", "flask"])
def server(request) -> Iterator[Server]:
    """hello.py, http_raises.py and http_dirapp/ with default settings, under both kinds."""
    s = launch(request.param, apps=HTTP_APPS)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="package")
def configured(tmp_path_factory) -> Iterator[Callable[[str], Server]]:
    """``configured(name)``: the gunicorn server for ``configs()[name]``, started on first use."""
    assets = tmp_path_factory.mktemp("http_assets")
    (assets / "custom.ico").write_bytes(CUSTOM_ICO)
    (assets / "jinja_index.html").write_text(JINJA_INDEX)
    (assets / "tornado_index.html").write_text(TORNADO_INDEX)
    table = configs(assets)
    started: dict[str, Server] = {}

    def get(name: str) -> Server:
        if name not in started:
            started[name] = launch("gunicorn", **table[name])
        return started[name]

    yield get
    # stop them all at once: gunicorn's graceful shutdown takes a moment each
    with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
        list(pool.map(lambda s: s.stop(), started.values()))
