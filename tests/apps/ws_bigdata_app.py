"""ws tests: a ColumnDataSource of 1,000,000 float64 values (an 8,000,000-byte buffer)."""
import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

curdoc().add_root(ColumnDataSource(data=dict(x=np.arange(1e6)), name="big"))
curdoc().title = "ws bigdata"
