"""An idle session keeps no empty default containers that only their model holds.

Bokeh makes each model's list, dict and set defaults eagerly and again on every
serialization; ``drop_unused_defaults`` forgets the empty, unshared ones after each PULL.
The wire must not change, and a default some code holds must still reach its model when
changed in place.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from bokeh.core.property.wrappers import PropertyValueContainer
from bokeh.models import Div

from bokeh_flask.app.apps.bokeh_compat import default_values
from bokeh_flask.app.sessions import session as session_module
from bokeh_flask.app.sessions.requests import RequestInfo
from tests.support.core import FakeTransport, make_core, message_content, message_header, new_session

SLIDERS = Path(__file__).resolve().parents[2] / "examples" / "sliders.py"


def connect_and_pull(core: Any, key: str, session: Any, reqid: str = "1") -> FakeTransport:
    transport = FakeTransport()
    connection = core.open_connection(core.applications[key], session.id, session.token,
                                      RequestInfo(), transport)
    session.pull(connection, reqid)
    return transport


def empty_defaults(doc: Any) -> list[tuple[str, str]]:
    return [(type(model).__name__, name) for model in doc.models
            for name, value in default_values(model).items()
            if isinstance(value, PropertyValueContainer) and not value]


def pull_contents(transport: FakeTransport) -> list[str]:
    """PULL-DOC-REPLY contents, with buffer ids (numbered per process) made equal."""
    return [re.sub(r'"id":"p\d+"', '"id":"p"', message_content(frames)) for frames in transport.messages
            if message_header(frames)["msgtype"] == "PULL-DOC-REPLY"]


def test_pulled_session_holds_no_empty_defaults():
    core = make_core({"/s": str(SLIDERS)})
    session = new_session(core, "/s")
    assert empty_defaults(session.document) != []
    transport = connect_and_pull(core, "/s", session)
    assert empty_defaults(session.document) == []
    session.pull(next(iter(core.connections)), "2")
    assert empty_defaults(session.document) == []
    assert len(pull_contents(transport)) == 2


def test_pull_replies_are_the_same_as_with_every_default_kept(monkeypatch):
    session_id = "same-session-in-both-servers"
    kept_core = make_core({"/s": str(SLIDERS)})
    with monkeypatch.context() as patched:
        patched.setattr(session_module, "drop_unused_defaults", lambda doc: 0)
        kept = new_session(kept_core, "/s", session_id=session_id)
        kept_replies = connect_and_pull(kept_core, "/s", kept)
        kept.pull(next(iter(kept_core.connections)), "2")
    assert empty_defaults(kept.document) != []
    core = make_core({"/s": str(SLIDERS)})
    session = new_session(core, "/s", session_id=session_id)
    replies = connect_and_pull(core, "/s", session)
    session.pull(next(iter(core.connections)), "2")
    assert pull_contents(replies) == pull_contents(kept_replies)
    assert len(pull_contents(replies)) == 2


def test_default_held_by_app_code_is_kept_and_still_reaches_the_model():
    held: list[Any] = []

    def modify(doc):
        div = Div(text="a", name="div")
        doc.add_root(div)
        held.append(div.tags)

    core = make_core({"/h": modify})
    session = new_session(core, "/h")
    transport = connect_and_pull(core, "/h", session)
    div = session.document.select_one({"name": "div"})
    assert default_values(div)["tags"] is held[0]
    with session.locked():
        held[0].append("changed in place")
    assert div.tags == ["changed in place"]
    assert "changed in place" in message_content(transport.messages[-1])


@pytest.mark.parametrize("change", ["append", "assign"])
def test_dropped_default_reads_empty_and_changes_reach_the_browser(change):
    def modify(doc):
        doc.add_root(Div(text="a", name="div"))

    core = make_core({"/d": modify})
    session = new_session(core, "/d")
    transport = connect_and_pull(core, "/d", session)
    div = session.document.select_one({"name": "div"})
    assert "tags" not in default_values(div)
    with session.locked():
        assert div.tags == []
        if change == "append":
            div.tags.append("new")
        else:
            div.tags = ["new"]
    assert div.tags == ["new"]
    patch = json.loads(message_content(transport.messages[-1]))
    assert patch["events"] == [{"kind": "ModelChanged", "model": {"id": div.id}, "attr": "tags", "new": ["new"]}]
