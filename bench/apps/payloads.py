"""Bench app for permessage-deflate: a TextInput whose Python on_change replaces a
ColumnDataSource's data, so each round trip sends the client one large PATCH-DOC.

The value names the payload: ``json:<n>`` sets 2 x 20,000 random floats as Python lists
(JSON text in the message), ``binary:<n>`` the same floats as numpy arrays (two 160,000-byte
binary buffers), ``smooth:<n>`` a time axis and a sine as numpy arrays (buffers of the same
size, of the regular kind measurements and time series give). The data is made once at
start-up (two variants, alternated by ``n``) so
the server's CPU per message is Bokeh's serialisation, the protocol and compression.
"""
import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, TextInput

POINTS = 20_000
_rng = np.random.default_rng(2026)
ARRAYS = [{"x": _rng.normal(size=POINTS), "y": _rng.normal(size=POINTS)} for _ in range(2)]
LISTS = [{k: v.tolist() for k, v in data.items()} for data in ARRAYS]
_t = np.arange(POINTS) * 0.01
SMOOTH = [{"x": _t + 1000.0 * i, "y": np.sin(_t + i)} for i in range(2)]
PAYLOADS = {"json": LISTS, "binary": ARRAYS, "smooth": SMOOTH}

source = ColumnDataSource(data={"x": [], "y": []}, name="source")
ti = TextInput(name="ti", value="")


def on_value(attr, old, new):
    kind, n = new.split(":")
    source.data = dict(PAYLOADS[kind][int(n) % 2])


ti.on_change("value", on_value)
curdoc().add_root(ti)
curdoc().add_root(source)
curdoc().title = "bench payloads"
