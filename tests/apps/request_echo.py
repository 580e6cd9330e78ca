"""Shows what the session sees of the request that created it."""
from bokeh.io import curdoc
from bokeh.models import Div

request = curdoc().session_context.request
curdoc().add_root(Div(name="request", text=f"remote_ip={request.remote_ip} protocol={request.protocol}"))
