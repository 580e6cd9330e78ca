"""Bench app for bench/workers.py: counts its own builds and marks each document with a nonce.

Every time this code runs (one document built), it appends one line to the file named by
``BENCH_BUILDS_FILE`` (when set): the nonce and the process id. The nonce, random per build,
is the document's title (so it is in the page's ``<title>``) and the text of the Div named
``nonce`` (so it is in the pulled document): a websocket that meets the page's document
pulls the page's nonce, one that got a rebuilt document pulls another. The TextInput ``ti``
and Div ``out`` give one PATCH-DOC round trip, as in ``trivial.py``.
"""
import os
import uuid

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Div, TextInput

nonce = uuid.uuid4().hex
path = os.environ.get("BENCH_BUILDS_FILE")
if path:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{nonce} {os.getpid()}\n".encode())  # one write, O_APPEND: whole lines
    finally:
        os.close(fd)

out = Div(name="out", text="ready")
ti = TextInput(name="ti", value="")


def on_value(attr, old, new):
    out.text = "got " + new


ti.on_change("value", on_value)
curdoc().add_root(column(ti, out, Div(name="nonce", text=nonce)))
curdoc().title = f"counted {nonce}"
