"""The admin page's data (``--admin``): the setting from each source, the per-app counts
and message counters a core reports, the stats file's write, read and removal, and the
table rows the admin app makes of the records (rates from counter deltas, its own
sessions out of the totals)."""
from __future__ import annotations

import json
import os
import time

import pytest

from bokeh_flask.app.apps import admin_app
from bokeh_flask.app.config.settings import SettingsError, build_settings
from bokeh_flask.app.runtime import worker_stats
from bokeh_flask.app.sessions import protocol_handler
from bokeh_flask.app.sessions.requests import RequestInfo
from tests.support.bokeh_version import client_message
from tests.support.core import FakeTransport, make_core, new_session


def modify_doc(doc) -> None:
    pass


def test_admin_setting_from_each_source():
    assert build_settings(environ={}).admin is False
    assert build_settings(environ={"BOKEH_FLASK_ADMIN": "1"}).admin is True
    assert build_settings(config={"BOKEH_ADMIN": True}, environ={}).admin is True
    assert build_settings(overrides={"admin": True}, environ={}).admin is True


def test_an_app_at_admin_is_refused():
    with pytest.raises(SettingsError, match="--admin: an app is already served at /admin"):
        make_core({"/admin": modify_doc}, admin=True)
    assert "/admin" not in make_core({"/x": modify_doc}).applications


def test_core_counts_sessions_connections_and_messages():
    core = make_core({"/x": modify_doc}, admin=True)
    session = new_session(core)
    context = core.applications["/x"]
    connection = core.open_connection(context, session.id, session.token, RequestInfo(), FakeTransport())
    protocol_handler.handle(connection, client_message("PULL-DOC-REQ"))
    counts = worker_stats.app_counts(core.applications, core.connections)["apps"]
    # in: the PULL-DOC-REQ; out: the ACK and the PULL-DOC-REPLY
    assert counts["/x"] == {"sessions": 1, "connections": 1, "messages_in": 1, "messages_out": 2}
    assert counts["/admin"]["sessions"] == 0
    core.close_connection(connection)


def test_writer_writes_atomically_and_removes_its_file(tmp_path):
    writer = worker_stats.StatsWriter(lambda: {"apps": {}}, str(tmp_path / "stats"))
    writer.start()
    try:
        assert os.listdir(tmp_path / "stats") == [f"{os.getpid()}.json"]
        [record] = worker_stats.read_workers(str(tmp_path / "stats"))
        assert record["pid"] == os.getpid() and record["apps"] == {} and record["rss_mib"] > 0
    finally:
        writer.stop()
    assert not (tmp_path / "stats").exists(), "a directory of its own goes with its last file"


def test_reader_skips_dead_stale_and_broken_files(tmp_path):
    now = time.time()
    (tmp_path / "1.json").write_text(json.dumps({"pid": os.getpid(), "time": now, "apps": {}}))
    (tmp_path / "2.json").write_text(json.dumps({"pid": 2**22 + 12345, "time": now, "apps": {}}))  # no such pid
    (tmp_path / "3.json").write_text(json.dumps({"pid": os.getppid(), "time": now - 60, "apps": {}}))
    (tmp_path / "4.json").write_text("{half")
    (tmp_path / "5.json.tmp").write_text("{}")
    assert [r["pid"] for r in worker_stats.read_workers(str(tmp_path))] == [os.getpid()]


def test_rows_rates_and_totals_leave_the_admin_page_out():
    def record(t: float, hello_messages: int, admin_messages: int) -> dict:
        return {"pid": 7, "time": t, "rss_mib": 80.5, "apps": {
            "/hello": {"sessions": 3, "connections": 2, "messages_in": hello_messages, "messages_out": 0},
            "/admin": {"sessions": 1, "connections": 1, "messages_in": 0, "messages_out": admin_messages}}}

    rates = admin_app.Rates()
    first = admin_app.worker_rows([record(100.0, 10, 5)], rates)
    assert first == {"pid": [7], "sessions": [3], "apps": ["/admin 1, /hello 3"], "connections": [2],
                     "messages_per_s": [0.0], "rss_mib": [80.5]}
    assert admin_app.worker_rows([record(102.0, 30, 500)], rates)["messages_per_s"] == [10.0]
    # the file was not rewritten since: the rate stands
    assert admin_app.worker_rows([record(102.0, 30, 500)], rates)["messages_per_s"] == [10.0]
