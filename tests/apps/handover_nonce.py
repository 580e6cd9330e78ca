"""Each session's document carries a nonce of its own (in the title and a Div), and the pid
of the process that built it; ``busy`` holds that worker's whole loop for 3 s, as a
CPU-bound callback does."""
import os
import secrets
import time

from bokeh.io import curdoc
from bokeh.models import Button, Div

nonce = secrets.token_hex(8)
doc = curdoc()
doc.title = f"nonce {nonce}"
doc.add_root(Div(name="where", text=f"nonce={nonce} pid={os.getpid()}"))
busy = Button(name="busy", label="busy")


def block() -> None:
    end = time.monotonic() + 3
    while time.monotonic() < end:
        pass


busy.on_click(block)
doc.add_root(busy)
