"""The classic Bokeh "sliders" demo.

A sine wave whose title, offset, amplitude, phase and frequency are driven by
widgets. Every change round-trips to Python: an ``on_change`` callback
recomputes the data and the browser redraws.

Run with either server:

    bokeh serve examples/sliders.py
    bokeh-flask serve examples/sliders.py

Every widget has a stable ``name`` so browser tests can find it, and the
``status`` Div is only ever written by Python, so seeing it change proves the
server answered.
"""
import numpy as np
from bokeh.io import curdoc
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Div, Slider, TextInput
from bokeh.plotting import figure

# Initial data: one period-ish of a sine wave.
N = 200
x = np.linspace(0, 4 * np.pi, N)
source = ColumnDataSource(data=dict(x=x, y=np.sin(x)))

plot = figure(name="plot", height=400, width=400, title="my sine wave",
              tools="crosshair,pan,reset,save,wheel_zoom",
              x_range=[0, 4 * np.pi], y_range=[-2.5, 2.5])
plot.line("x", "y", source=source, line_width=3, line_alpha=0.6)

# Widgets (the names are part of the test contract).
text = TextInput(name="title", title="title", value="my sine wave")
offset = Slider(name="offset", title="offset", value=0.0, start=-5.0, end=5.0, step=0.1)
amplitude = Slider(name="amplitude", title="amplitude", value=1.0, start=-5.0, end=5.0, step=0.1)
phase = Slider(name="phase", title="phase", value=0.0, start=0.0, end=2 * np.pi, step=0.1)
freq = Slider(name="freq", title="frequency", value=1.0, start=0.1, end=5.1, step=0.1)
status = Div(name="status", text="ready")


def update_title(attr, old, new):
    plot.title.text = new
    status.text = f"title={new}"


def update_data(attr, old, new):
    # Read the current slider values and recompute the curve.
    a, b = amplitude.value, offset.value
    w, k = phase.value, freq.value
    source.data = dict(x=x, y=a * np.sin(k * x + w) + b)
    status.text = (f"amplitude={a:g} offset={b:g} phase={w:g} freq={k:g}")


text.on_change("value", update_title)
for w in (offset, amplitude, phase, freq):
    w.on_change("value", update_data)

inputs = column(text, offset, amplitude, phase, freq, status)
curdoc().add_root(row(inputs, plot, width=800))
curdoc().title = "Sliders"
