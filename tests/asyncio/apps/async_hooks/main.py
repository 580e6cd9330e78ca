from bokeh.io import curdoc
from bokeh.models import Div

doc = curdoc()
server_context = doc.session_context.server_context
doc.add_root(Div(text=doc.template_variables.get("hook", "not awaited"), name="hook"))
doc.add_root(Div(text=getattr(server_context, "loaded_by_hook", "not awaited"), name="loaded"))
