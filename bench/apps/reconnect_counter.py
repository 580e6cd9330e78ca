"""A counter whose state lives only in the server's document: after a reconnect the count
tells whether the tab met its live session (the count goes on) or a rebuilt one (from 0).
``lost`` counts the ConnectionLost events the server gave the document; ``pid`` names the
worker that built it."""
import os

from bokeh.events import ConnectionLost
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Button, Div

doc = curdoc()
count = Div(text="0", name="count")
lost = Div(text="0", name="lost")
pid = Div(text=str(os.getpid()), name="pid")
button = Button(label="add one", name="add")


def add() -> None:
    count.text = str(int(count.text) + 1)


def connection_lost(event: ConnectionLost) -> None:
    lost.text = str(int(lost.text) + 1)


button.on_click(add)
doc.on_event(ConnectionLost, connection_lost)
doc.add_root(column(button, count, lost, pid))
doc.title = "Reconnect"
