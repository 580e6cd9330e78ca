"""ws tests: a button whose Python callback adds a new Div root (contract 5.5 fan-out quirk)."""
from bokeh.io import curdoc
from bokeh.models import Button, Div

doc = curdoc()
button = Button(label="add", name="add_root")


def add_root() -> None:
    doc.add_root(Div(text="added by server", name="added"))


button.on_click(add_root)
doc.add_root(button)
doc.title = "ws addroot"
