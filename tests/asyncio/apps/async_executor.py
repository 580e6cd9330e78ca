"""Bokeh's user guide, "unlocked callbacks": a ``@without_document_lock`` periodic coroutine
waits on a thread pool with ``asyncio.wrap_future`` and hands the result back with
``add_next_tick_callback``."""
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from bokeh.document import without_document_lock
from bokeh.io import curdoc
from bokeh.models import Div

doc = curdoc()
executor = ThreadPoolExecutor(max_workers=2)
updates = Div(text="0", name="updates")
last = Div(text="", name="last")
counter = 0


def blocking_task(i: int) -> int:
    time.sleep(0.05)
    return i


def locked_update(i: int) -> None:
    updates.text = str(int(updates.text) + 1)
    last.text = str(i)


@without_document_lock
async def unlocked_task() -> None:
    global counter
    counter += 1
    result = await asyncio.wrap_future(executor.submit(blocking_task, counter))
    doc.add_next_tick_callback(partial(locked_update, i=result))


doc.add_periodic_callback(unlocked_task, 100)
doc.add_root(updates)
doc.add_root(last)
