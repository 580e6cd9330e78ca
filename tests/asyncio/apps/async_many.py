"""Many sessions of this app run coroutines at once. Each session has a periodic coroutine
(``ticks``), a thread handing changes back with ``add_next_tick_callback`` (``thread``, the
"updating from threads" pattern of Bokeh's guide), a coroutine that raises every fifth tick,
and one that awaits a future nothing ever completes: it must end with its session."""
import asyncio
import threading
import time
from functools import partial

from bokeh.document import without_document_lock
from bokeh.io import curdoc
from bokeh.models import Div

doc = curdoc()
ticks = Div(text="0", name="ticks")
from_thread = Div(text="0", name="thread")


async def tick() -> None:
    await asyncio.sleep(0.005)
    ticks.text = str(int(ticks.text) + 1)
    if int(ticks.text) % 5 == 0:
        doc.add_next_tick_callback(fail)


async def fail() -> None:
    await asyncio.sleep(0)
    raise ZeroDivisionError(f"planned failure in session {doc.session_context.id[:6]}")


@without_document_lock  # a locked one would hold the session's lock forever, as in Bokeh
async def wait_forever() -> None:
    await asyncio.get_running_loop().create_future()


def bump(n: int) -> None:
    from_thread.text = str(n)


def worker() -> None:
    for n in range(1, 11):
        time.sleep(0.02)
        doc.add_next_tick_callback(partial(bump, n))


doc.add_periodic_callback(tick, 50)
doc.add_next_tick_callback(wait_forever)
threading.Thread(target=worker, daemon=True).start()
doc.add_root(ticks)
doc.add_root(from_thread)
