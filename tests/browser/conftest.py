"""Fixtures for the browser end-to-end tests (Debian chromium through Playwright).

``examples_server`` runs the bundled examples (sliders, streaming, dashboard) once per
kind for the whole folder. The ``page`` fixture extends the root one: uncaught page
exceptions are collected into ``page.console_messages`` as ``error:`` entries too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.support.browser import KINDS, launch_host_app
from tests.support.servers import EXAMPLES, Server, launch

EXAMPLE_APPS = [EXAMPLES / "sliders.py", EXAMPLES / "streaming.py", EXAMPLES / "dashboard"]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="package", params=KINDS)
def examples_server(request) -> Iterator[Server]:
    """The bundled examples under gunicorn (gevent worker) and under ``flask run``."""
    missing = [str(p) for p in EXAMPLE_APPS if not p.exists()]
    if missing:
        pytest.fail(f"bundled examples missing: {missing}")
    server = launch(request.param, apps=EXAMPLE_APPS)
    yield server
    server.stop()


@pytest.fixture
def start_host_app() -> Iterator:
    """Factory fixture: ``start_host_app(env={...}, port=...)``; all stopped after the test."""
    started: list[Server] = []

    def start(**kwargs) -> Server:
        server = launch_host_app(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()

