"""Closing the browser page lets the server discard the session after the unused lifetime."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.browser import KINDS, assert_no_console_errors, model_value, wait_for_log_after, wait_for_model
from tests.support.servers import launch

LIFECYCLE_APP = Path(__file__).resolve().parent / "apps" / "lifecycle"
SETTINGS = {"unused_session_lifetime": 500, "check_unused_sessions": 200}


@pytest.fixture(scope="module", params=KINDS)
def short_lived_server(request):
    server = launch(request.param, apps=[LIFECYCLE_APP],
                    env={"BOKEH_FLASK_SETTINGS": json.dumps(SETTINGS)})
    yield server
    server.stop()


def test_closed_page_session_is_discarded(short_lived_server, page):
    server = short_lived_server
    page.goto(server.url + "/lifecycle")
    wait_for_model(page, "ticks", "parseInt(v) >= 1")  # Python answers over the websocket
    sid = model_value(page, "sid")
    assert sid and sid != "none"
    server.wait_for_log(f"lifecycle: session {sid} created")

    # While the page is connected the session must survive well past the unused lifetime:
    # wait (on a condition) for 15 more 100 ms ticks, i.e. >= 1.5 s > 500 ms + 200 ms.
    start = int(model_value(page, "ticks"))
    offset = len(server.log_text())
    wait_for_model(page, "ticks", f"parseInt(v) >= {start + 15}", timeout=10_000)
    assert f"session {sid} destroyed" not in server.log_text()[offset:], server.log_text()[offset:]
    assert_no_console_errors(page)

    offset = len(server.log_text())
    page.close()
    tail = wait_for_log_after(server, offset, f"lifecycle: session {sid} destroyed", timeout=10)
    # Document.on_session_destroyed callbacks run too
    wait_for_log_after(server, offset, f"lifecycle: document of session {sid} destroyed", timeout=5)
    assert "Traceback" not in tail, tail
