from bokeh.io import curdoc
from bokeh.models import Div

doc = curdoc()
context = doc.session_context
doc.add_root(Div(text=doc.template_variables.get("hook", "not awaited"), name="hook"))
doc.add_root(Div(text=getattr(context.server_context, "loaded_by_hook", "not awaited"), name="loaded"))
doc.add_root(Div(text=str(context.token_payload.get("from_async_process_request")), name="request"))
