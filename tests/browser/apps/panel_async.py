"""Panel's callbacks beyond widgets: ``pn.bind`` of an ``async def`` (it awaits
``asyncio.sleep``), an ``async def`` periodic callback (``pn.state.add_periodic_callback``),
``pn.state.onload`` (run once the page has loaded: it fills the ``loaded`` pane with the
session id) and ``pn.state.on_session_destroyed`` (run when the server discards the session:
it appends ``destroyed <session id>`` to the file named by ``PANEL_LIFECYCLE_FILE``, which the
test reads after closing the page)."""
import asyncio
import os

import panel as pn

pn.extension()

slider = pn.widgets.IntSlider(name="value", start=0, end=10, value=2)
ticks = pn.widgets.StaticText(name="ticks", value="0")
loaded = pn.pane.Markdown("loaded: not yet")


async def square(value: int) -> str:
    await asyncio.sleep(0.05)
    return f"square = {value * value}"


async def tick() -> None:
    await asyncio.sleep(0.01)
    ticks.value = str(int(ticks.value) + 1)


def on_load() -> None:
    loaded.object = f"loaded: {pn.state.curdoc.session_context.id}"


def on_destroyed(session_context, path: str = os.environ.get("PANEL_LIFECYCLE_FILE", os.devnull)) -> None:
    """The path is bound when the app runs: by the time the session's destroy callbacks
    run, its document is destroyed and this module's globals with it (under ``bokeh
    serve`` and ``panel serve`` too), so ``os`` is gone."""
    with open(path, "a") as out:
        out.write(f"destroyed {session_context.id}\n")


pn.state.add_periodic_callback(tick, period=100, count=30)
pn.state.onload(on_load)
pn.state.on_session_destroyed(on_destroyed)
pn.Column(slider, pn.pane.Markdown(pn.bind(square, slider)), ticks, loaded).servable()
