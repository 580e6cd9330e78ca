"""ws tests: a button click schedules a next-tick coroutine that runs without the document
lock (as Panel schedules its event handlers); a text input's change, sent right behind the
click, reports whether that coroutine had run by then (under ``bokeh serve`` it has: Tornado
reads the next message on a later turn of its loop)."""
from bokeh.document import without_document_lock
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Button, Div, TextInput

doc = curdoc()
clicks: list[str] = []
button = Button(name="btn")
field = TextInput(name="field")
report = Div(name="report", text="")


@without_document_lock
async def record_click() -> None:
    clicks.append("click")


def on_value(attr: str, old: str, new: str) -> None:
    report.text = f"{new}: {len(clicks)} click(s) recorded before"


button.on_click(lambda: doc.add_next_tick_callback(record_click))
field.on_change("value", on_value)
doc.add_root(column(button, field, report))
