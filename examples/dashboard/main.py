"""A small dashboard, written as a Bokeh *directory app*.

Directory layout (the same conventions ``bokeh serve`` uses)::

    dashboard/
        main.py             <- this file: builds the document
        app_hooks.py        <- server/session lifecycle hooks + process_request
        theme.yaml          <- Bokeh theme applied to every document
        templates/index.html  <- Jinja2 page template (extends Bokeh's FILE)
        static/             <- served at <app path>/static/

Open ``/dashboard?dataset=b`` to start on dataset "b".
"""
import datetime as dt

import numpy as np
from bokeh.io import curdoc
from bokeh.layouts import column, row
from bokeh.models import Button, ColumnDataSource, Div, Select
from bokeh.plotting import figure

DATASETS = {
    "a": "Dataset A (sine)",
    "b": "Dataset B (random walk)",
}


def make_data(key):
    x = np.arange(100)
    if key == "b":
        y = np.cumsum(np.random.default_rng().normal(size=x.size))
    else:
        y = np.sin(x / 8.0) * 10
    return dict(x=x, y=y)


doc = curdoc()
ctx = doc.session_context  # None when the document is built outside a server

# --- request facts --------------------------------------------------------
# ``request.arguments`` is Tornado-style: dict[str, list[bytes]].
initial = "a"
static_prefix = "/dashboard"
if ctx is not None and ctx.request is not None:
    values = ctx.request.arguments.get("dataset", [])
    if values and values[0].decode("utf-8", "replace") in DATASETS:
        initial = values[0].decode()
    # The page is served at <prefix>/dashboard (maybe with a trailing slash);
    # the app's static files live beneath that path.
    path = getattr(ctx.request, "path", None)
    if path:
        for suffix in ("/ws", "/autoload.js"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
        static_prefix = path.rstrip("/") or static_prefix

# --- model ----------------------------------------------------------------
source = ColumnDataSource(data=make_data(initial))

plot = figure(name="plot", height=350, width=600, title=DATASETS[initial],
              tools="pan,reset,save,wheel_zoom")
plot.line("x", "y", source=source, line_width=2)

select = Select(name="dataset", title="Dataset", value=initial,
                options=[(k, v) for k, v in DATASETS.items()])
refresh = Button(name="refresh", label="Refresh", button_type="primary")
status = Div(name="status", text=f"dataset={initial}")


def load(key, why):
    source.data = make_data(key)
    plot.title.text = DATASETS[key]
    status.text = f"dataset={key} ({why} at {dt.datetime.now():%H:%M:%S})"


select.on_change("value", lambda attr, old, new: load(new, "selected"))
refresh.on_click(lambda: load(select.value, "refreshed"))

doc.add_root(column(row(select, refresh), status, plot))
doc.title = "Dashboard"

# Extra variables for templates/index.html.
doc.template_variables["heading"] = "Bokeh-Flask Dashboard"
doc.template_variables["static_prefix"] = static_prefix
