"""bokeh_flask.app.sessions.session.ServerSession: lock, callbacks, curdoc, PATCH-DOC fan-out, destroy."""
from __future__ import annotations

import json

import gevent
import pytest
from bokeh.document import Document
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, Div

from bokeh_flask.app.sessions.requests import RequestInfo
from bokeh_flask.app.sessions.session import ServerSession, SessionDestroyed
from tests.support.bokeh_version import client_message
from tests.support.core import FakeTransport, make_core, message_content, message_header, new_session, wait_until


def test_callbacks_added_by_app_code_are_scheduled():
    ticks = []

    def modify(doc):
        doc.add_root(Div())
        doc.add_periodic_callback(lambda: ticks.append("p"), 20)
        doc.add_next_tick_callback(lambda: ticks.append("n"))
        doc.add_timeout_callback(lambda: ticks.append("t"), 30)

    core = make_core({"/x": modify})
    session = new_session(core)
    assert wait_until(lambda: ticks.count("p") >= 3)
    assert ticks.count("n") == 1 and ticks.count("t") == 1
    # one-shot callbacks removed themselves from the Document
    assert len(session.document.session_callbacks) == 1
    session.destroy()


def test_callbacks_run_under_the_lock_and_may_change_the_document():
    observed = []
    core = make_core({"/x": lambda doc: doc.add_root(Div(text="0"))})
    session = new_session(core)
    doc = session.document

    def cb():
        observed.append(session._lock.locked())
        doc.roots[0].text = "changed"

    doc.add_next_tick_callback(cb)
    assert wait_until(lambda: observed)
    assert observed == [True]
    assert doc.roots[0].text == "changed"


def test_nolock_callback_runs_without_the_lock():
    from bokeh.document import without_document_lock

    observed = []
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)

    @without_document_lock
    def cb():
        observed.append((session._lock.locked(), type(curdoc()).__name__))

    session.document.add_next_tick_callback(cb)
    assert wait_until(lambda: observed)
    assert observed == [(False, "UnlockedDocumentProxy")]


def test_change_outside_the_lock_is_refused():
    core = make_core({"/x": lambda doc: doc.add_root(Div(text="a"))})
    session = new_session(core)

    def change_without_lock():
        with pytest.raises(RuntimeError, match="lock"):
            session.document.roots[0].text = "b"

    # in its own greenlet: Bokeh's patch_curdoc leaks its entry when the body raises
    gevent.spawn(change_without_lock).get(timeout=5)
    session.with_document_locked(lambda: setattr(session.document.roots[0], "text", "c"))
    assert session.document.roots[0].text == "c"


def test_with_document_locked_sets_curdoc_and_resolves_coroutines():
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)

    async def coro():
        return curdoc()

    assert session.with_document_locked(curdoc) is session.document
    assert session.with_document_locked(coro) is session.document


def test_curdoc_is_per_session_when_callbacks_interleave():
    core = make_core({"/x": lambda doc: doc.add_root(Div())})
    sessions = [new_session(core) for _ in range(3)]
    seen = {i: [] for i in range(3)}

    def make_cb(i):
        def cb():
            for _ in range(5):
                seen[i].append(curdoc())
                gevent.sleep(0.005)  # let the other sessions' callbacks run in between
            seen[i].append(curdoc())
        return cb

    for i, s in enumerate(sessions):
        s.document.add_next_tick_callback(make_cb(i))
        s.document.add_periodic_callback(make_cb(i), 15)
    assert wait_until(lambda: all(len(v) >= 24 for v in seen.values()))
    for i, s in enumerate(sessions):
        assert all(d is s.document for d in seen[i]), i
        s.destroy()
    # outside any callback curdoc() is not a session's document
    assert all(curdoc() is not s.document for s in sessions)


def test_curdoc_interleaving_two_greenlets_with_locked_document():
    core = make_core({"/x": lambda doc: None})
    a, b = new_session(core), new_session(core)
    results = {"a": [], "b": []}

    def work(name, session):
        def body():
            for _ in range(10):
                results[name].append(curdoc() is session.document)
                gevent.sleep(0.001)
        session.with_document_locked(body)

    gevent.joinall([gevent.spawn(work, "a", a), gevent.spawn(work, "b", b)], raise_error=True)
    assert results == {"a": [True] * 10, "b": [True] * 10}


def _connect(core, session, transport=None):
    context = core.applications["/x"]
    return core.open_connection(context, session.id, session.token, RequestInfo(), transport or FakeTransport())


def test_patch_fan_out_serialised_once_and_skips_setter():
    core = make_core({"/x": lambda doc: doc.add_root(Div(text="a"))})
    session = new_session(core)
    t1, t2, t3 = FakeTransport(), FakeTransport(), FakeTransport()
    c1, c2, c3 = (_connect(core, session, t) for t in (t1, t2, t3))
    assert session.connection_count == 3
    for t in (t1, t2, t3):
        assert t.msgtypes() == ["ACK"]

    def change():
        session.document.add_root(Div(text="new model"))

    session.with_document_locked(change)
    frames = [t.messages[-1] for t in (t1, t2, t3)]
    assert all(t.msgtypes()[-1] == "PATCH-DOC" for t in (t1, t2, t3))
    assert frames[0] == frames[1] == frames[2]
    content = json.loads(message_content(frames[0]))
    assert "new model" in json.dumps(content)  # every connection gets the full new model

    # a change whose setter is connection 1 is not echoed to it
    div = session.document.roots[0]
    with session.locked():
        div.set_from_json("text", "from c1", setter=c1)
    assert t1.msgtypes()[-1] == "PATCH-DOC" and len(t1.messages) == 2
    assert len(t2.messages) == 3 and len(t3.messages) == 3


def test_dead_transport_detaches_connection():
    core = make_core({"/x": lambda doc: doc.add_root(Div(text="a"))})
    session = new_session(core)
    dead = FakeTransport(alive=True)
    connection = _connect(core, session, dead)
    dead.alive = False
    session.with_document_locked(lambda: setattr(session.document.roots[0], "text", "b"))
    assert session.connection_count == 0
    assert connection.state.value == "closed"


def test_pull_push_patch_reply():
    core = make_core({"/x": lambda doc: doc.add_root(Div(text="served"))})
    session = new_session(core)
    t = FakeTransport()
    c = _connect(core, session, t)
    session.pull(c, "req1")
    header = message_header(t.messages[-1])
    assert header["msgtype"] == "PULL-DOC-REPLY" and header["reqid"] == "req1"
    assert "served" in message_content(t.messages[-1])

    other = Document()
    other.add_root(Div(text="pushed"))
    push = client_message("PUSH-DOC", other)
    session.push(c, push)
    assert t.msgtypes()[-1] == "OK"
    assert [r.text for r in session.document.roots] == ["pushed"]


def test_lock_blocks_expiration_and_destroyed_session_refuses_lock():
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)
    assert not session.expiration_blocked
    with session.locked():
        assert session.expiration_blocked
    assert not session.expiration_blocked
    session.destroy()
    with pytest.raises(SessionDestroyed):
        with session.locked():
            pass
    assert not session.expiration_blocked
    session.destroy()  # idempotent


def test_callback_on_destroyed_session_is_ignored():
    ran = []
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)
    cb = session.document.add_next_tick_callback(lambda: ran.append(1))
    session.destroy()
    session._run_callback(cb)
    gevent.sleep(0.02)
    assert ran == []


def test_destroy_releases_models():
    core = make_core({"/x": lambda doc: doc.add_root(Div()) or doc.add_root(ColumnDataSource())})
    session = new_session(core)
    doc = session.document
    session.destroy()
    assert session.destroyed and session.connection_count == 0
    assert doc.session_context is None
    assert len(doc.session_callbacks) == 0


def test_raising_callbacks_do_not_grow_the_curdoc_stack():
    """Bokeh's ``patch_curdoc`` has no try/finally, so every callback that raises leaves its
    entry on the (greenlet-local) curdoc stack; a periodic callback runs in one long-lived
    greenlet, so a callback failing every period would grow that stack without bound."""
    from bokeh_flask.app.apps import curdoc as curdoc_stack

    depths = []
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)

    def flaky():
        depths.append(curdoc_stack.depth())
        if len(depths) % 2:
            raise ValueError("every other run fails")

    session.document.add_periodic_callback(flaky, 10)
    assert wait_until(lambda: len(depths) >= 10)
    session.destroy()
    assert max(depths) == min(depths), depths


def test_subscribe_unsubscribe_updates_idle_clock():
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)
    conn = object()
    session.subscribe(conn)
    session._last_unsubscribe -= 50
    assert session.seconds_since_last_unsubscribe() >= 50
    session.unsubscribe(conn)
    assert session.seconds_since_last_unsubscribe() < 1
    assert session.connection_count == 0
    session.unsubscribe(conn)  # unknown connection: harmless


def test_server_session_direct_construction():
    doc = Document()
    doc.add_root(Div())
    ticks = []
    doc.add_next_tick_callback(lambda: ticks.append(1))
    session = ServerSession("direct", doc, "tok")
    assert wait_until(lambda: ticks == [1])
    session.destroy()
