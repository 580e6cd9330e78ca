"""Test app: what its Python code sees of a single sign-on login (session_context.user and
.claims) in named Paragraphs, and a button whose click the server answers (a widget round
trip over the websocket). It runs under ``bokeh serve`` too (the bench's reference), whose
session context has neither."""
import os

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Button, Paragraph

context = curdoc().session_context
user = getattr(context, "user", None)
claims = getattr(context, "claims", {})
answer = Paragraph(text="", name="answer")
button = Button(label="Ask the server", name="ask")
button.on_click(lambda: setattr(answer, "text", f"answered {user}"))
curdoc().add_root(column(
    Paragraph(text=str(user), name="who"),
    Paragraph(text=str(claims.get("name")), name="name"),
    Paragraph(text=",".join(sorted(claims.get("groups", []))), name="groups"),
    Paragraph(text=str(os.getpid()), name="pid"),
    button, answer,
))
