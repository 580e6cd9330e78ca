"""app/sessions/broadcasts.py (what a broadcast does in a worker) and the channels that
carry it (blueprints/broadcast/channels.py, against a real redis-server and SQLite file)."""
from __future__ import annotations

import logging

import pytest
from bokeh.models import Div

from bokeh_flask import BroadcastError, on_broadcast
from bokeh_flask.app.sessions.broadcasts import Message, local_stamp
from bokeh_flask.blueprints.broadcast.channels import HostChannel, RedisChannel
from tests.support.core import make_core, new_session


def div_app(doc) -> None:
    doc.add_root(Div(name="value", text="start"))


@on_broadcast("/core-bc", "value")
def show(doc, value) -> None:
    div = doc.get_model_by_name("value")
    if div.text == "refuse":
        raise RuntimeError("this session refuses broadcasts")
    div.text = value["text"]


def text(session) -> str:
    return session.document.get_model_by_name("value").text


@pytest.fixture
def core():
    return make_core({"/core-bc": div_app})


def test_every_session_runs_the_handler_and_a_failing_one_is_logged(core, caplog):
    sessions = [new_session(core, "/core-bc") for _ in range(3)]
    sessions[1].with_document_locked(lambda doc: setattr(doc.get_model_by_name("value"), "text", "refuse"),
                                     sessions[1].document)
    with caplog.at_level(logging.ERROR):
        assert core.broadcast("/core-bc", "value", {"text": "new"}) == 2
    assert [text(s) for s in sessions] == ["new", "refuse", "new"]
    failed = [r for r in caplog.records if "the handler failed" in r.getMessage()]
    assert len(failed) == 1 and sessions[1].id[:8] in failed[0].getMessage() and "/core-bc" in failed[0].getMessage()


def test_a_session_built_later_starts_with_the_newest_value(core):
    core.broadcast("/core-bc", "value", {"text": "first"})
    core.broadcast("/core-bc", "value", {"text": "second"})
    assert text(new_session(core, "/core-bc")) == "second"


def test_each_value_runs_once_per_session_and_an_older_one_not_at_all(core):
    session = new_session(core, "/core-bc")
    apps = core.applications["/core-bc"].broadcasts
    newer = Message("/core-bc", "value", local_stamp(), '{"text": "newer"}')
    older = Message("/core-bc", "value", "0" * 17 + "-00000000", '{"text": "older"}')
    assert apps.apply(session, newer) is True
    assert apps.apply(session, newer) is False  # back from the channel: already run
    assert apps.apply(session, older) is False
    assert text(session) == "newer"


def test_bad_input_is_refused_in_the_caller(core):
    with pytest.raises(BroadcastError, match="travels as JSON"):
        core.broadcast("/core-bc", "value", {"when": object()})
    with pytest.raises(BroadcastError, match="travels as JSON"):
        core.broadcast("/core-bc", "value", float("nan"))
    with pytest.raises(BroadcastError, match="over"):
        core.broadcast("/core-bc", "value", "x" * (4 * 1024 * 1024))
    with pytest.raises(BroadcastError, match="Application /nope does not exist"):
        core.broadcast("/nope", "value", 1)
    with pytest.raises(BroadcastError, match="start with '/'"):
        on_broadcast("dashboard")


def test_an_unhandled_name_is_said_once(core, caplog):
    new_session(core, "/core-bc")
    with caplog.at_level(logging.WARNING):
        core.broadcast("/core-bc", "nobody", 1)
        core.broadcast("/core-bc", "nobody", 2)
    assert sum("no handler is registered" in r.getMessage() for r in caplog.records) == 1


def test_the_host_channel_hands_the_newest_to_a_worker_that_starts_later(tmp_path):
    sender = HostChannel(str(tmp_path / "broadcasts.sqlite3"), "group-a")
    sender.publish("/app", "value", '"one"')
    two = sender.publish("/app", "value", '"two"')
    other_server = HostChannel(str(tmp_path / "broadcasts.sqlite3"), "group-b")
    assert other_server.start(lambda message: None) == []  # another master's rows are not its
    other_server.stop()
    late = HostChannel(str(tmp_path / "broadcasts.sqlite3"), "group-a")
    received: list[Message] = []
    newest = late.start(received.append)
    late.stop()
    assert max(newest, key=lambda m: m.stamp) == two
    three = sender.publish("/app", "value", '"three"')
    late.poll()
    assert received == [three]


def test_redis_keeps_the_newest_value_and_stamps_with_its_clock(redis_url):
    first, second = RedisChannel(redis_url, "test"), RedisChannel(redis_url, "test")
    one = first.publish("/app", "value", '{"n": 1}')
    two = second.publish("/app", "value", '{"n": 2}')
    assert one.stamp < two.stamp and len(one.stamp) == len(two.stamp)
    assert first.newest() == [two]
    assert RedisChannel(redis_url, "another deployment").newest() == []
