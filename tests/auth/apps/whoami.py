"""Test app: shows what its Python code sees of the user (session_context.user and
logout_url) in named Paragraphs the tests read from the browser's Bokeh models, and the
pid of the worker that built the session."""
import os
from uuid import uuid4

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Paragraph

context = curdoc().session_context
curdoc().add_root(column(
    Paragraph(text=str(context.user), name="who"),
    Paragraph(text=str(context.logout_url), name="logout_url"),
    Paragraph(text=str(context.token_payload.get("bokeh_user")), name="token_user"),
    Paragraph(text=uuid4().hex, name="nonce"),  # tells one session's document from another's
    Paragraph(text=str(os.getpid()), name="pid"),
))
