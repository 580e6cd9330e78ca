"""http tests: app code that raises while building the document (the page must still be served)."""
from bokeh.io import curdoc
from bokeh.models import Div

curdoc().add_root(Div(text="before the error"))
raise RuntimeError("http_raises: deliberate failure in app code")
