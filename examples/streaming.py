"""Streaming: a periodic callback appends random-walk points to a plot.

``source.stream(..., rollover=300)`` sends only the new points to the browser
and keeps at most 300 on screen. The "pause" button removes / re-adds the
periodic callback; the "count" Div shows how many points have been streamed.

    bokeh serve examples/streaming.py
    bokeh-flask serve examples/streaming.py
"""
import random

from bokeh.io import curdoc
from bokeh.layouts import column, row
from bokeh.models import Button, ColumnDataSource, Div
from bokeh.plotting import figure

ROLLOVER = 300
PERIOD_MS = 200

doc = curdoc()  # capture once; callbacks below use this session's document
source = ColumnDataSource(data=dict(x=[], y=[]))

plot = figure(name="plot", height=350, width=700, title="Random walk",
              tools="pan,reset,save,wheel_zoom")
plot.line("x", "y", source=source, line_width=2)
plot.scatter("x", "y", source=source, size=4, alpha=0.5)

button = Button(name="pause", label="Pause", button_type="warning")
count = Div(name="count", text="0 points")

# Per-session state: each browser tab runs this script in its own document.
state = {"n": 0, "y": 0.0, "callback": None}


def update():
    state["n"] += 1
    state["y"] += random.uniform(-1, 1)
    source.stream(dict(x=[state["n"]], y=[state["y"]]), rollover=ROLLOVER)
    count.text = f"{state['n']} points"


def toggle():
    if state["callback"] is None:
        state["callback"] = doc.add_periodic_callback(update, PERIOD_MS)
        button.label, button.button_type = "Pause", "warning"
    else:
        doc.remove_periodic_callback(state["callback"])
        state["callback"] = None
        button.label, button.button_type = "Resume", "success"


button.on_click(toggle)

state["callback"] = doc.add_periodic_callback(update, PERIOD_MS)
doc.add_root(column(row(button, count), plot))
doc.title = "Streaming"
