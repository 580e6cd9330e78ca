"""bokeh.client against bokeh-flask (contract 11): the client connects straight to the
websocket with a token it minted itself, no HTTP request first and no Origin header."""
from __future__ import annotations

import uuid

import bokeh
import pytest
from bokeh.client import ClientSession, pull_session, push_session
from bokeh.document import Document
from bokeh.models import Div


def test_pull_session(server):
    with pull_session(url=f"{server.url}/hello") as session:
        doc = session.document
        assert session.connected
        assert doc.title == "Hello"
        assert len(doc.roots) == 1
        assert doc.get_model_by_name("ti").value == "a"
        assert doc.get_model_by_name("status").text == "hi"
        assert doc.get_model_by_name("btn").label == "click"


@pytest.mark.skipif(not hasattr(ClientSession, "request_server_info"),
                    reason="Bokeh 4's client has no SERVER-INFO-REQ; its SYNC round trip (force_roundtrip) "
                           "is in test_client_change_runs_server_callback")
def test_request_server_info(server):
    with pull_session(url=f"{server.url}/hello") as session:
        info = session.request_server_info()
    assert info["version_info"] == {"bokeh": bokeh.__version__, "server": bokeh.__version__}


def test_push_session_then_pull_by_id(server):
    session_id = f"pushtest-{uuid.uuid4().hex}"
    url = f"{server.url}/hello"
    doc = Document()
    doc.add_root(Div(text="pushed text", name="pushed"))
    doc.title = "Pushed"
    with push_session(doc, session_id=session_id, url=url) as pushed:
        assert pushed.connected
        with pull_session(session_id=session_id, url=url) as pulled:
            got = pulled.document
            assert got.title == "Pushed"
            assert [type(r).__name__ for r in got.roots] == ["Div"]
            assert got.roots[0].text == "pushed text"
            assert got.get_model_by_name("ti") is None  # the app's roots were replaced


def test_client_change_runs_server_callback(server):
    url = f"{server.url}/hello"
    with pull_session(url=url) as session:
        session.document.get_model_by_name("ti").value = "x"
        session.force_roundtrip()  # the PATCH-DOC goes out before this request, in order
        # a second client of the same session sees the callback's result
        with pull_session(session_id=session.id, url=url) as other:
            assert other.document.get_model_by_name("ti").value == "x"
            assert other.document.get_model_by_name("status").text == "got x"
        # and so does the first one once it pulls again
        session.pull()
        assert session.document.get_model_by_name("status").text == "got x"


def test_change_from_second_client_visible_to_first_after_pull(server):
    """Two bokeh.client sessions on one session id share the server document."""
    url = f"{server.url}/hello"
    with pull_session(url=url) as first, pull_session(session_id=first.id, url=url) as second:
        second.document.get_model_by_name("ti").value = "from second"
        second.force_roundtrip()
        # first: PATCH-DOCs arriving while the client waits for its own reply are dropped by
        # bokeh.client; a pull is how it resynchronises
        first.pull()
        assert first.document.get_model_by_name("ti").value == "from second"
        assert first.document.get_model_by_name("status").text == "got from second"


def test_client_session_to_unknown_app_fails_cleanly(server):
    session = ClientSession(websocket_url=f"{server.ws_url}/no_such_app/ws")
    with pytest.raises(OSError):
        session.pull()
    assert not session.connected
