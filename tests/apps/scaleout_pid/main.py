"""Shows which process rendered the page and which one serves the session.

``process_request`` (app_hooks.py) runs only where the page is rendered and puts that
pid into the token; this code runs wherever the session is built, maybe elsewhere.
"""
import os

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Div, TextInput

context = curdoc().session_context
payload = context.token_payload if context else {}
args = context.request.arguments if context else {}

where = Div(name="where", text=f"page_pid={payload.get('page_pid')} session_pid={os.getpid()}")
seen = Div(name="args", text=",".join(f"{k}={v[-1].decode()}" for k, v in sorted(args.items())))
echo = Div(name="echo", text="")
box = TextInput(name="box")
box.on_change("value", lambda attr, old, new: setattr(echo, "text", f"echo {new}"))
curdoc().add_root(column(box, where, seen, echo))
