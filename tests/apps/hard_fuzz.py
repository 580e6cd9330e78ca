"""Hardening tests (issue 3): a document with many property kinds for fuzzed PATCH-DOCs.

Strings, numbers, enums, lists, a ColumnDataSource with numeric and string columns
drawn by a plot (so ColumnsStreamed/ColumnsPatched/ColumnDataChanged have a target),
and Python callbacks that run when a patch lands (including one that raises).
"""
import numpy as np
from bokeh.io import curdoc
from bokeh.layouts import column, row
from bokeh.models import Button, ColumnDataSource, Div, Select, Slider, TextInput, Toggle
from bokeh.plotting import figure

status = Div(text="ready", name="status")
text = TextInput(value="a", name="text")
slider = Slider(start=0, end=10, value=1, step=0.5, name="slider")
select = Select(options=["one", "two", "three"], value="one", name="select")
toggle = Toggle(label="toggle", name="toggle")
button = Button(label="click", name="button")
source = ColumnDataSource(data=dict(x=np.arange(8.0), y=np.linspace(0, 1, 8), label=list("abcdefgh")),
                          name="source")
plot = figure(width=300, height=200, name="plot", tools="pan,reset")
plot.line("x", "y", source=source)
plot.scatter("x", "y", source=source)


def on_text(attr, old, new):
    status.text = "text " + str(new)[:20]


def on_slider(attr, old, new):
    status.text = "slider %s" % new


def on_select(attr, old, new):
    if new == "three":
        raise RuntimeError("app callback raised on purpose")
    status.text = "select " + str(new)[:20]


def on_data(attr, old, new):
    status.text = "rows %d" % len(source.data.get("x", []))


def on_click():
    source.stream(dict(x=[len(source.data["x"]) + 0.0], y=[0.5], label=["z"]), rollover=50)


text.on_change("value", on_text)
slider.on_change("value", on_slider)
select.on_change("value", on_select)
source.on_change("data", on_data)
button.on_click(on_click)

curdoc().add_root(column(row(text, select, toggle, button), slider, status, plot))
curdoc().title = "hard fuzz"
