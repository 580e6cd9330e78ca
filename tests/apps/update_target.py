"""A Div each session shows: ``update_sessions`` sets its text from a Flask route, and a
TextInput runs a thread that sets it through Bokeh 3.10's ``doc.locked_callback``."""
import threading

from bokeh.io import curdoc
from bokeh.models import Div, TextInput

doc = curdoc()
value = Div(name="value", text="0")
start = TextInput(name="start", value="")
doc.add_root(value)
doc.add_root(start)

if hasattr(doc, "locked_callback"):  # Bokeh 3.10
    @doc.locked_callback
    def show(text: str) -> None:
        value.text = text

    def from_a_thread(attr, old, new):
        threading.Thread(target=lambda: [show(f"{new}-{i}") for i in range(3)], daemon=True).start()

    start.on_change("value", from_a_thread)
