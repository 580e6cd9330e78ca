"""Tornado's loop from app code: ``IOLoop.current().add_callback`` and ``call_later`` chain
steps, each handing a document change to the session with ``add_next_tick_callback``."""
from functools import partial

from bokeh.io import curdoc
from bokeh.models import Div
from tornado import gen
from tornado.ioloop import IOLoop

doc = curdoc()
updates = Div(text="0", name="updates")


def bump() -> None:
    updates.text = str(int(updates.text) + 1)


def step(n: int) -> None:
    doc.add_next_tick_callback(bump)
    if n < 40:
        IOLoop.current().call_later(0.05, partial(step, n + 1))


@gen.coroutine
def gen_step():
    yield gen.sleep(0.01)
    doc.add_next_tick_callback(bump)


IOLoop.current().add_callback(step, 1)
IOLoop.current().spawn_callback(gen_step)
doc.add_root(updates)
