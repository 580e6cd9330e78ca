"""A tab behind a load balancer: each session's document has a nonce of its own (in the
title, which the page shows, and in a Div the websocket pulls) and the pid of the process
that built it; ``who`` shows the logged-in user and the page's ``tab`` argument, which a
session rebuilt on another host gets from its request context."""
import os
import secrets

from bokeh.io import curdoc
from bokeh.models import Div

doc = curdoc()
context = doc.session_context
nonce = secrets.token_hex(8)
tab = context.request.arguments.get("tab", [b""])[-1].decode()
doc.title = f"nonce {nonce}"
doc.add_root(Div(name="where", text=f"nonce={nonce} pid={os.getpid()}"))
doc.add_root(Div(name="who", text=f"user={getattr(context, 'user', None)} tab={tab}"))
