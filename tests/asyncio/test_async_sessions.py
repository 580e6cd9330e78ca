"""Many sessions running coroutines at once, under gunicorn and ``flask run``: none starves
another, a coroutine that raises is logged with its traceback and harms nothing, threads
hand changes back while coroutines run, and once the sessions expire no asyncio task is
left (a coroutine awaiting a future that never completes is cancelled with its session)."""
from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.servers import launch
from tests.support.wire import BokehWS, model_by_name, model_changes, page_token

APP = Path(__file__).resolve().parent / "apps" / "async_many.py"
SESSIONS = 20
SETTINGS = {"log_level": "debug", "stats_log_frequency": 200, "unused_session_lifetime": 500,
            "check_unused_sessions": 200}
STATS = re.compile(r"(\d+) connections, (\d+) sessions, (\d+) asyncio tasks")


@pytest.fixture(scope="module", params=["gunicorn", "flask"])
def server(request):
    s = launch(request.param, apps=[APP], env={"BOKEH_FLASK_SETTINGS": json.dumps(SETTINGS)})
    yield s
    s.stop()


def one_session(server) -> tuple[int, int]:
    """Pull a session and read its PATCH-DOCs until ``ticks`` reached 10 and the thread's
    ten changes arrived; returns the last values."""
    token = page_token(server.url, "async_many")
    with BokehWS(f"{server.ws_url}/async_many/ws", token, timeout=30) as ws:
        doc = ws.pull().content["doc"]
        ids = {name: model_by_name(doc, name)["id"] for name in ("ticks", "thread")}
        last = {name: int(model_by_name(doc, name)["attributes"].get("text", "0")) for name in ids}
        deadline = time.monotonic() + 30
        while (last["ticks"] < 10 or last["thread"] < 10) and time.monotonic() < deadline:
            msg = ws.recv()
            for name, model_id in ids.items():
                for change in model_changes([msg], "text", model_id):
                    last[name] = int(change["new"])
    return last["ticks"], last["thread"]


def last_stats(server) -> tuple[int, int, int]:
    found = STATS.findall(server.log_text())
    return tuple(map(int, found[-1])) if found else (-1, -1, -1)


def test_many_sessions_run_coroutines_and_leave_no_task(server):
    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        results = list(pool.map(lambda _: one_session(server), range(SESSIONS)))
    assert all(ticks >= 10 and thread == 10 for ticks, thread in results), results

    log = server.log_text()
    failures = re.findall(r"ZeroDivisionError: planned failure in session", log)
    assert len(failures) >= SESSIONS, log[-3000:]
    assert "async_many.py" in log  # the traceback names the app's file
    assert "Task was destroyed but it is pending" not in log

    deadline = time.monotonic() + 20
    while last_stats(server)[1:] != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert last_stats(server) == (0, 0, 0), server.log_text()[-2000:]
