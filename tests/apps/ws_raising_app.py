"""ws tests: a Python callback that raises when the client sets ``value`` to ``boom``."""
from bokeh.io import curdoc
from bokeh.models import TextInput

box = TextInput(value="", name="box")


def on_value(attr, old, new):
    if new == "boom":
        1 / 0  # the line the log must point at


box.on_change("value", on_value)
curdoc().add_root(box)
