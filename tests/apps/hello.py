from bokeh.io import curdoc
from bokeh.models import Button, Div, TextInput, ColumnDataSource
from bokeh.layouts import column
import numpy as np
div = Div(text="hi", name="status")
ti = TextInput(value="a", name="ti")
def cb(attr, old, new):
    div.text = "got " + new
ti.on_change("value", cb)
b = Button(label="click", name="btn")
b.on_click(lambda: setattr(div, "text", "clicked"))
src = ColumnDataSource(data=dict(x=np.arange(10.0)))
curdoc().add_root(column(ti, div, b))
curdoc().title = "Hello"
