"""Bench app: a ColumnDataSource of 1,000,000 float64 values (one 8,000,000-byte buffer).

The values are ``np.arange(1e6) * 0.5`` so the client can verify every byte it pulls.
"""
import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

N = 1_000_000
curdoc().add_root(ColumnDataSource(data=dict(x=np.arange(N, dtype=np.float64) * 0.5), name="big"))
curdoc().title = "bench bigdata"
