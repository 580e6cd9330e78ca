"""The same counter with reconnecting turned off in the document's config (Bokeh >= 3.8):
BokehJS must not reconnect, and says so in its connection-status notification."""
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Button, Div

doc = curdoc()
count = Div(text="0", name="count")
button = Button(label="add one", name="add")
button.on_click(lambda: setattr(count, "text", str(int(count.text) + 1)))
doc.config.reconnect_session = False
doc.add_root(column(button, count))
