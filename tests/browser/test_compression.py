"""examples/sliders.py in chromium over a compressed websocket (``--websocket-compression-level``):
chromium offers permessage-deflate, the server accepts it, and the page still renders and
round-trips a slider change through Python."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.browser import Y, assert_no_console_errors, slider_handle, wait_for_bokeh, wait_for_model, y_values
from tests.support.servers import EXAMPLES, Server, launch


@pytest.fixture(scope="module")
def deflate_server() -> Iterator[Server]:
    server = launch("cli", apps=[EXAMPLES / "sliders.py"],
                    args=["--allow-websocket-origin", "127.0.0.1:*", "--websocket-compression-level", "6"])
    yield server
    server.stop()


def test_sliders_round_trip_over_permessage_deflate(deflate_server, page):
    handshakes: list[dict] = []
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.on("Network.webSocketHandshakeResponseReceived", lambda event: handshakes.append(event["response"]))

    page.goto(deflate_server.url + "/sliders")
    wait_for_bokeh(page)
    wait_for_model(page, "status", "v === 'ready'")
    before = y_values(page)
    extensions = [{k.lower(): v for k, v in h["headers"].items()}.get("sec-websocket-extensions", "")
                  for h in handshakes]
    assert extensions and extensions[0].startswith("permessage-deflate"), handshakes

    handle = slider_handle(page, "amplitude")
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # step 0.1: amplitude 1.0 -> 1.3
    wait_for_model(page, "status", "v === 'amplitude=1.3 offset=0 phase=0 freq=1'")
    wait_for_model(page, "plot", "Math.abs(Math.max(...v) - 1.3) < 0.01", expr=Y)
    assert y_values(page) == pytest.approx([1.3 * y for y in before], abs=1e-9)
    assert_no_console_errors(page)
