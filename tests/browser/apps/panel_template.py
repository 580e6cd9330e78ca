"""A Panel template holding a ``pn.widgets.Tabulator``: ``pn.template.FastListTemplate``,
or ``pn.template.BootstrapTemplate`` with ``?template=bootstrap``. A row selected or a
cell edited in the browser is shown by Python in a Markdown pane (``picked``, ``edited``),
so the test reads the round trip on the page. The favicon is named as served behind a prefix:
a template's default, ``./favicon.ico``, resolves under the prefix, where neither Bokeh's server
nor ours answers it (``/favicon.ico`` is never prefixed), and chromium logs the 404."""
import pandas as pd
import panel as pn

pn.extension("tabulator")

TEMPLATES = {"fast": pn.template.FastListTemplate, "bootstrap": pn.template.BootstrapTemplate}

cities = pd.DataFrame({"city": ["Lisbon", "Oslo", "Quito"], "population": [545, 709, 2800]})
table = pn.widgets.Tabulator(cities, editors={"city": None}, show_index=False)
picked = pn.pane.Markdown("picked: none")
edited = pn.pane.Markdown("edited: none")


def show_selection(event) -> None:
    picked.object = "picked: " + ", ".join(cities.city[i] for i in event.new)


def show_edit(event) -> None:
    edited.object = f"edited: {table.value.city[event.row]} {event.column} = {event.value}"


table.param.watch(show_selection, "selection")
table.on_edit(show_edit)
template = TEMPLATES[pn.state.session_args.get("template", [b"fast"])[0].decode()]
template(title="cities", favicon="static/extensions/panel/images/favicon.ico",
         main=[table, picked, edited]).servable()
