"""ws tests: every new session gets a random stamp, so a re-created session is recognisable."""
import uuid

from bokeh.io import curdoc
from bokeh.models import Div

curdoc().add_root(Div(text=uuid.uuid4().hex, name="stamp"))
curdoc().title = "ws stamp"
