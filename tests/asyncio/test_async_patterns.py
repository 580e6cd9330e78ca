"""Bokeh's async patterns run unchanged on the worker's asyncio loop, under gunicorn and
``flask run``: each app below updates its document from coroutines, executors or Tornado's
``IOLoop``, as under ``bokeh serve``, without a traceback in the log."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.servers import launch
from tests.support.wire import BokehWS, model_by_name, model_changes, page_token

APPS = Path(__file__).resolve().parent / "apps"
KINDS = ["gunicorn", "flask"]


@pytest.fixture(scope="module", params=KINDS)
def async_server(request):
    server = launch(request.param, apps=[APPS / "async_executor.py", APPS / "async_periodic.py",
                                         APPS / "tornado_ioloop.py", APPS / "async_hooks"])
    yield server
    server.stop()


def updates_reach(server, app: str, count: int) -> list[str]:
    """Open ``app``'s session, pull it, and read PATCH-DOCs until its ``updates`` Div
    counted ``count``; returns the texts seen."""
    token = page_token(server.url, app)
    with BokehWS(f"{server.ws_url}/{app}/ws", token, timeout=20) as ws:
        doc = ws.pull().content["doc"]
        updates = model_by_name(doc, "updates")["id"]
        seen = [model_by_name(doc, "updates")["attributes"].get("text", "0")]
        while int(seen[-1]) < count:
            seen += [c["new"] for c in model_changes([ws.recv()], "text", updates)]
    return seen


@pytest.mark.parametrize("app", ["async_executor", "async_periodic", "tornado_ioloop"])
def test_app_updates_its_document_from_asyncio(async_server, app):
    seen = updates_reach(async_server, app, 5)
    assert [int(v) for v in seen] == sorted(int(v) for v in seen)
    log = async_server.log_text()
    assert "Traceback" not in log and "never awaited" not in log, log[-3000:]


def test_async_lifecycle_hooks_are_awaited(async_server):
    token = page_token(async_server.url, "async_hooks")
    with BokehWS(f"{async_server.ws_url}/async_hooks/ws", token) as ws:
        doc = ws.pull().content["doc"]
    assert model_by_name(doc, "hook")["attributes"]["text"] == "session created awaited"
    assert model_by_name(doc, "loaded")["attributes"]["text"] == "server loaded awaited"
    assert model_by_name(doc, "request")["attributes"]["text"] == "/async_hooks/"
    assert "never awaited" not in async_server.log_text()
