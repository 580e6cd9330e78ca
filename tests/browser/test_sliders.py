"""examples/sliders.py in chromium: it renders, and widget changes round-trip through Python."""
from __future__ import annotations

import pytest

from tests.support.browser import (
    Y,
    assert_no_console_errors,
    model_value,
    slider_handle,
    wait_for_bokeh,
    wait_for_model,
    y_values,
)

SCREENSHOT = "/tmp/bokeh-flask-sliders.png"


def test_sliders_render_and_slider_round_trips_through_python(examples_server, page):
    page.goto(examples_server.url + "/sliders")
    wait_for_bokeh(page)
    assert page.title() == "Sliders"
    assert page.locator("canvas").first.is_visible()
    wait_for_model(page, "status", "v === 'ready'")
    before = y_values(page)
    assert len(before) == 200

    handle = slider_handle(page, "amplitude")
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # step 0.1: amplitude 1.0 -> 1.3

    # The status Div is written only by the Python callback.
    wait_for_model(page, "status", "v === 'amplitude=1.3 offset=0 phase=0 freq=1'")
    wait_for_model(page, "plot", "Math.abs(Math.max(...v) - 1.3) < 0.01", expr=Y)
    after = y_values(page)
    assert after != before
    assert after == pytest.approx([1.3 * y for y in before], abs=1e-9)
    assert model_value(page, "amplitude", "value") == pytest.approx(1.3)

    if examples_server.kind == "gunicorn":
        page.screenshot(path=SCREENSHOT, full_page=True)
    assert_no_console_errors(page)


def test_text_input_sets_plot_title_through_python(examples_server, page):
    page.goto(examples_server.url + "/sliders")
    wait_for_bokeh(page)
    assert model_value(page, "plot", "title.text") == "my sine wave"

    box = page.locator("div.bk-TextInput input.bk-input")
    box.fill("hello from chromium")
    box.press("Enter")

    wait_for_model(page, "plot", "v === 'hello from chromium'", expr="title.text")
    wait_for_model(page, "status", "v === 'title=hello from chromium'")
    assert_no_console_errors(page)
