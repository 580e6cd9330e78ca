"""ws tests: a small ColumnDataSource the client overwrites with large buffers."""
import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

curdoc().add_root(ColumnDataSource(data=dict(x=np.zeros(3)), name="src"))
curdoc().title = "ws cds"
