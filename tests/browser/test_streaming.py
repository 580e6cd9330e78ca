"""examples/streaming.py in chromium: a Python periodic callback streams to the browser,
and the pause button (a Python on_click) stops it."""
from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.browser import assert_no_console_errors, model_value, wait_for_bokeh, wait_for_model

#: examples/streaming.py streams one point every 200 ms.
PERIOD_MS = 200


def count(page) -> int:
    return int(model_value(page, "count").split()[0])


def test_stream_grows_and_pause_stops_it(examples_server, page):
    page.goto(examples_server.url + "/streaming")
    wait_for_bokeh(page)

    wait_for_model(page, "count", "parseInt(v) >= 1")
    start = count(page)
    wait_for_model(page, "count", f"parseInt(v) >= {start + 5}")
    # the streamed points reach the ColumnDataSource too, not just the Div
    assert model_value(page, "plot", "renderers[0].data_source.data.x.length") >= start + 5

    page.get_by_role("button", name="Pause").click()
    # the label is set by the Python on_click: once it shows, no more updates are queued
    wait_for_model(page, "pause", "v === 'Resume'", expr="label")
    paused_at = count(page)
    # Negative check: observe for 8 periods; the count must not move.
    with pytest.raises(PlaywrightTimeout):
        page.wait_for_function(
            "n => parseInt(Bokeh.documents[0].get_model_by_name('count').text) !== n",
            arg=paused_at, timeout=8 * PERIOD_MS)
    assert count(page) == paused_at

    page.get_by_role("button", name="Resume").click()
    wait_for_model(page, "pause", "v === 'Pause'", expr="label")
    wait_for_model(page, "count", f"parseInt(v) >= {paused_at + 3}")
    assert_no_console_errors(page)
