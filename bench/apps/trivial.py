"""Bench app: a TextInput whose Python on_change sets a Div's text (one round trip)."""
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Div, TextInput

out = Div(name="out", text="ready")
ti = TextInput(name="ti", value="")


def on_value(attr, old, new):
    out.text = "got " + new


ti.on_change("value", on_value)
curdoc().add_root(column(ti, out))
curdoc().title = "bench trivial"
