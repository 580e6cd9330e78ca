"""A Panel app as Panel's docs write them: a widget bound to a function (``pn.bind``), and a
Bokeh figure in ``pn.pane.Bokeh`` driven by the same widget, ending in ``.servable()``."""
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

pn.extension()

slider = pn.widgets.IntSlider(name="points", start=1, end=20, value=3)


def describe(points: int) -> str:
    return f"points = {points}"


source = ColumnDataSource(data={"x": [0, 1, 2], "y": [0, 1, 4]}, name="source")
plot = figure(height=250, width=400, title="squares", name="plot")
plot.line("x", "y", source=source)


def redraw(event) -> None:
    xs = list(range(event.new))
    source.data = {"x": xs, "y": [x * x for x in xs]}


slider.param.watch(redraw, "value")
pn.Column(slider, pn.pane.Markdown(pn.bind(describe, slider)), pn.pane.Bokeh(plot)).servable()
