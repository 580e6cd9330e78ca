import numpy as np
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Button, ColumnDataSource, Div, TextInput

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
