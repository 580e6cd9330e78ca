"""The admin page (``--admin``): a Bokeh app of ours, served at ``/admin`` like the others.

Being one of the apps, it gets their routes, sessions and login with nothing of its own:
with authentication on, an anonymous visitor goes to the login page as for any app. Each
session reads every worker's stats file (:mod:`..runtime.worker_stats`) once a second and shows a
table of the workers (sessions per app, connections, messages per second from the
counters' deltas, resident memory) and the last two minutes of the totals.

The admin page's own sessions are listed with their app, but left out of the totals
(sessions, connections, messages per second): its one update a second per open tab would
otherwise show as traffic.
"""
from __future__ import annotations

import functools
import time
from typing import Any

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.document import Document
from bokeh.layouts import column
from bokeh.models import ColumnDataSource
from bokeh.models.widgets.markups import Div  # not bokeh.models: its __all__ is built at run time
from bokeh.models.widgets.tables import DataTable, NumberFormatter, TableColumn
from bokeh.plotting import figure

from ..runtime import worker_stats
from .app_keys import ADMIN_KEY, refuse_admin_key

#: Milliseconds between two updates of a page.
UPDATE_MS = 1000
#: Points of history in the chart: two minutes at one a second.
HISTORY_POINTS = 120

_COLUMNS = ("pid", "sessions", "apps", "connections", "messages_per_s", "rss_mib")


def with_admin(applications: dict[str, Application], stats_directory: str) -> dict[str, Application]:
    """``applications`` plus the admin page, showing the workers whose stats files are in
    ``stats_directory``; refused when an app already has its URL."""
    refuse_admin_key(applications)
    return {**applications,
            ADMIN_KEY: Application(FunctionHandler(functools.partial(build_document, stats_directory=stats_directory)))}


class Rates:
    """Messages per second of each worker, from its counters' change between two records."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[float, int, float]] = {}  # pid: (time, count, rate)

    def of(self, record: dict[str, Any], count: int) -> float:
        pid: int = record["pid"]
        now: float = record["time"]
        last_time, last_count, rate = self._last.get(pid, (now, count, 0.0))
        if now > last_time:  # else the file was not rewritten since: the rate stands
            rate = max(0.0, (count - last_count) / (now - last_time))
        self._last[pid] = (now, count, rate)
        return rate


def worker_rows(records: list[dict[str, Any]], rates: Rates) -> dict[str, list[Any]]:
    """The workers table's columns; totals leave out the admin page's own sessions."""
    rows: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for record in records:
        apps = record.get("apps", {})
        counted = [app for key, app in apps.items() if key != ADMIN_KEY]
        rows["pid"].append(record["pid"])
        rows["sessions"].append(sum(app["sessions"] for app in counted))
        rows["apps"].append(", ".join(f"{key} {app['sessions']}" for key, app in sorted(apps.items())))
        rows["connections"].append(sum(app["connections"] for app in counted))
        messages = sum(app["messages_in"] + app["messages_out"] for app in counted)
        rows["messages_per_s"].append(round(rates.of(record, messages), 1))
        rows["rss_mib"].append(record.get("rss_mib", 0.0))
    return rows


def build_document(doc: Document, stats_directory: str) -> None:
    """One admin session: the table, the charts, and their update every second."""
    workers = ColumnDataSource(name="admin_workers", data={name: [] for name in _COLUMNS})
    history = ColumnDataSource(name="admin_history", data={"time": [], "messages_per_s": [], "sessions": []})
    titles = {"pid": "worker pid", "sessions": "sessions", "apps": "sessions per app",
              "connections": "websockets", "messages_per_s": "messages/s", "rss_mib": "RSS MiB"}
    table = DataTable(source=workers, index_position=None, height=220, sizing_mode="stretch_width",
                      columns=[TableColumn(field=name, title=titles[name],
                                           formatter=NumberFormatter(format="0.0"))
                               if name in ("messages_per_s", "rss_mib")
                               else TableColumn(field=name, title=titles[name]) for name in _COLUMNS])
    rate_chart = figure(title="messages/s, all workers", x_axis_type="datetime", height=220,
                        sizing_mode="stretch_width", tools="")
    rate_chart.line("time", "messages_per_s", source=history, line_width=2)
    session_chart = figure(title="sessions, all workers", x_axis_type="datetime", height=220,
                           sizing_mode="stretch_width", tools="", x_range=rate_chart.x_range)
    session_chart.line("time", "sessions", source=history, line_width=2, color="darkorange")
    rates = Rates()

    def update() -> None:
        rows = worker_rows(worker_stats.read_workers(stats_directory), rates)
        # a copy mypy types as Bokeh's columns (Bokeh 3.6 declares them narrowly, and dict is invariant)
        workers.data = dict(rows)
        history.stream({"time": [time.time() * 1000], "messages_per_s": [sum(rows["messages_per_s"])],
                        "sessions": [sum(rows["sessions"])]}, rollover=HISTORY_POINTS)

    update()
    doc.add_periodic_callback(update, UPDATE_MS)
    doc.title = "bokeh-flask admin"
    doc.add_root(column(
        Div(text="<h2>bokeh-flask: the workers of this host</h2><p>Updated every second. "
                 "Totals leave out this page's own sessions and messages.</p>"),
        table, rate_chart, session_chart, sizing_mode="stretch_width"))
