"""http tests: a directory app with its own static/ folder."""
from bokeh.io import curdoc
from bokeh.models import Div

curdoc().add_root(Div(text="dirapp"))
curdoc().title = "Dir App"
