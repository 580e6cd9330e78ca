"""A locked periodic coroutine: ``asyncio.sleep``, a task it awaits, and the loop's default
executor, then a document change (the lock is held across the awaits, as under Tornado)."""
import asyncio
import time

from bokeh.io import curdoc
from bokeh.models import Div

doc = curdoc()
updates = Div(text="0", name="updates")
running = False


async def helper() -> int:
    await asyncio.sleep(0.01)
    return 1


def blocking() -> int:
    time.sleep(0.01)
    return 1


async def tick() -> None:
    await asyncio.sleep(0.02)
    step = await asyncio.create_task(helper())
    step += await asyncio.get_running_loop().run_in_executor(None, blocking)
    # curdoc() is this session's document inside the coroutine too
    curdoc().get_model_by_name("updates").text = str(int(updates.text) + step // 2)


doc.add_periodic_callback(tick, 100)
doc.add_root(updates)
