"""Test app: the user and the pid of the worker that built the session, in named
Paragraphs (a test tells which worker holds each websocket)."""
import os

from bokeh.io import curdoc
from bokeh.models import Paragraph

context = curdoc().session_context
curdoc().add_root(Paragraph(text=str(context.user), name="who"))
curdoc().add_root(Paragraph(text=str(os.getpid()), name="pid"))
