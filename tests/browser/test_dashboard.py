"""examples/dashboard (a directory app) in chromium: custom template, static CSS, Python
callbacks, and the ``?dataset=`` request argument."""
from __future__ import annotations

from tests.support.browser import assert_no_console_errors, model_value, wait_for_bokeh, wait_for_model


def test_template_and_static_css_apply(examples_server, page):
    response = page.goto(examples_server.url + "/dashboard")
    assert response.ok
    # the template's title block is served; BokehJS then sets document.title to doc.title
    assert "<title>Dashboard | bokeh-flask</title>" in response.text()
    wait_for_bokeh(page)
    assert page.title() == "Dashboard"
    heading = page.locator("h1#dashboard-heading")
    assert heading.inner_text() == "Bokeh-Flask Dashboard"
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('dashboard-heading')).color"
        " === 'rgb(20, 90, 160)'")
    # the Bokeh roots sit inside the template's own markup
    assert page.locator("main.dashboard-body canvas").first.is_visible()
    assert page.evaluate(
        "() => document.querySelector('header.dashboard-header img').naturalWidth") > 0
    assert_no_console_errors(page)


def test_refresh_and_select_answer_through_python(examples_server, page):
    page.goto(examples_server.url + "/dashboard")
    wait_for_bokeh(page)
    assert model_value(page, "status") == "dataset=a"
    assert model_value(page, "dataset", "value") == "a"

    page.get_by_role("button", name="Refresh").click()
    wait_for_model(page, "status", "v.startsWith('dataset=a (refreshed at ')")

    page.locator("div.bk-Select select").select_option(label="Dataset B (random walk)")
    wait_for_model(page, "status", "v.startsWith('dataset=b (selected at ')")
    wait_for_model(page, "plot", "v === 'Dataset B (random walk)'", expr="title.text")
    assert_no_console_errors(page)


def test_dataset_query_argument_reaches_the_app(examples_server, page):
    page.goto(examples_server.url + "/dashboard?dataset=b")
    wait_for_bokeh(page)
    # main.py reads session_context.request.arguments["dataset"] when building the document
    assert model_value(page, "status") == "dataset=b"
    assert model_value(page, "dataset", "value") == "b"
    assert model_value(page, "plot", "title.text") == "Dataset B (random walk)"

    page.get_by_role("button", name="Refresh").click()
    wait_for_model(page, "status", "v.startsWith('dataset=b (refreshed at ')")
    assert_no_console_errors(page)
