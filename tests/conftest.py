"""Shared fixtures: real servers (see :mod:`tests.support.servers`) and Debian chromium via
Playwright."""
from __future__ import annotations

import signal
import subprocess
from typing import Any, Iterator

import pytest

from tests.support.servers import APPS, CHROMIUM, IN_CI, REDIS_SERVER, Server, chromium_available, launch, start_redis


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped by SIGTERM (``kill``, a CI timeout) ends as one stopped by Ctrl-C: the
    teardowns run, so the servers the tests started (each in a session of its own, which a
    signal to the test's process group does not reach) are stopped too."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="module", autouse=True)
def stop_asyncio_loop() -> Iterator[None]:
    """Stop the asyncio loop a module's in-process ``ServerCore`` started: later modules
    drive Playwright's sync API and ``bokeh.client``, which refuse to run while a loop runs
    in their thread."""
    yield
    import sys

    loop_module = sys.modules.get("bokeh_flask.app.runtime.asyncio_loop")
    if loop_module is not None:
        loop_module.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[tuple[subprocess.Popen, str]]:
    """A Debian redis-server of the test's own on a free loopback port (no persistence), as
    its process (a test may stop it) and URL; skipped locally without it, a failure under
    CI=true."""
    if not REDIS_SERVER.exists():
        if IN_CI:
            pytest.fail(f"{REDIS_SERVER} is missing; CI must install Debian's redis-server")
        pytest.skip(f"{REDIS_SERVER} is not installed")
    process, url = start_redis()
    yield process, url
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def redis_url(redis_server: tuple[subprocess.Popen, str]) -> str:
    return redis_server[1]


@pytest.fixture
def start_server() -> Iterator:
    """Factory fixture: ``start_server(kind, apps=..., env=..., args=...)``; all stopped after."""
    started: list[Server] = []

    def start(kind: str = "gunicorn", **kwargs) -> Server:
        server = launch(kind, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module", params=["gunicorn", "flask"])
def server(request) -> Iterator[Server]:
    """The test apps under both ways of running (module-scoped: one start per module and kind)."""
    s = launch(request.param, apps=[APPS / "hello.py", *sorted(APPS.glob("*_app.py"))])
    yield s
    s.stop()



@pytest.fixture(scope="module")
def browser():
    """Debian chromium via Playwright; skipped locally without it, a failure under CI=true.

    Module-scoped: Playwright's sync API keeps an asyncio loop running in the main thread
    while it is open, which would break ``bokeh.client`` (Tornado) in later test modules.
    """
    if not chromium_available():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    pg.console_messages = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.console_messages.append(f"{m.type}: {m.text}"))
    # uncaught page exceptions count as errors too
    pg.on("pageerror", lambda exc: pg.console_messages.append(f"error: uncaught {exc}"))
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
