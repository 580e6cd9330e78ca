"""Panel's async patterns: ``pn.bind`` of an ``async def`` (it awaits ``asyncio.sleep``), and
an ``async def`` periodic callback registered with ``pn.state.add_periodic_callback``."""
import asyncio

import panel as pn

pn.extension()

slider = pn.widgets.IntSlider(name="value", start=0, end=10, value=2)
ticks = pn.widgets.StaticText(name="ticks", value="0")


async def square(value: int) -> str:
    await asyncio.sleep(0.05)
    return f"square = {value * value}"


async def tick() -> None:
    await asyncio.sleep(0.01)
    ticks.value = str(int(ticks.value) + 1)


pn.state.add_periodic_callback(tick, period=100, count=30)
pn.Column(slider, pn.pane.Markdown(pn.bind(square, slider)), ticks).servable()
