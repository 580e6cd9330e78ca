"""bokeh_flask.app.sessions.contexts: get-or-create sessions, hooks, discard."""
from __future__ import annotations

import logging

import gevent
import pytest
from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.application.handlers.handler import Handler
from bokeh.models import Div

from bokeh_flask.app.sessions.contexts import ServerContext, SessionContext
from bokeh_flask.app.sessions.requests import RequestInfo
from tests.support.core import FakeTransport, make_core, new_session, wait_until


class RecordingHandler(Handler):
    """A Bokeh handler recording its lifecycle calls (async hooks, as Bokeh declares them)."""

    def __init__(self, log: list, yield_in_hooks: bool = False):
        super().__init__()
        self.log = log
        self.yield_in_hooks = yield_in_hooks

    def modify_document(self, doc):
        ctx = doc.session_context
        self.log.append(("modify", ctx.id))
        doc.add_root(Div(text=f"session {ctx.id}"))

    async def on_session_created(self, session_context):
        if self.yield_in_hooks:
            gevent.sleep(0.01)
        self.log.append(("created", session_context.id))
        if session_context.session is not None:  # must not exist yet (errors here are only logged)
            self.log.append(("session already exists", session_context.id))

    async def on_session_destroyed(self, session_context):
        if self.yield_in_hooks:
            gevent.sleep(0.01)
        self.log.append(("destroyed", session_context.id))

    def process_request(self, request):
        return {"seen": request.path}


def test_concurrent_creation_runs_app_once():
    runs = []

    def modify(doc):
        runs.append(doc)
        gevent.sleep(0.05)  # yield while creating: the other greenlets must wait, not re-create
        doc.add_root(Div(text="x"))

    core = make_core({"/x": modify})
    context = core.applications["/x"]
    token = core.tokens.new_token("same-id")
    greenlets = [gevent.spawn(context.create_session_if_needed, "same-id", token, RequestInfo())
                 for _ in range(8)]
    gevent.joinall(greenlets, raise_error=True, timeout=5)
    assert len(runs) == 1
    sessions = {id(g.value) for g in greenlets}
    assert len(sessions) == 1
    assert list(context.sessions) == ["same-id"]
    assert context.create_session_if_needed("same-id", token, None) is greenlets[0].value
    assert len(runs) == 1


def test_different_ids_create_different_sessions():
    core = make_core({"/x": lambda doc: doc.add_root(Div())})
    a, b = new_session(core, session_id="a"), new_session(core, session_id="b")
    assert a is not b and a.document is not b.document
    assert set(core.applications["/x"].sessions) == {"a", "b"}
    assert {s.id for s in core.applications["/x"].server_context.sessions} == {"a", "b"}


def test_failed_creation_propagates_to_waiters_and_allows_retry(monkeypatch):
    from bokeh_flask.app.sessions import contexts

    real_session = contexts.ServerSession
    runs = []

    def exploding_session(*args, **kwargs):
        gevent.sleep(0.02)  # let the other greenlets start waiting on the pending creation
        raise RuntimeError("creation failed")

    core = make_core({"/x": lambda doc: runs.append(1)})
    context = core.applications["/x"]
    token = core.tokens.new_token("id")
    monkeypatch.setattr(contexts, "ServerSession", exploding_session)
    greenlets = [gevent.spawn(context.create_session_if_needed, "id", token, None) for _ in range(4)]
    gevent.joinall(greenlets, timeout=5)
    assert all(isinstance(g.exception, RuntimeError) for g in greenlets), [g.exception for g in greenlets]
    assert len(runs) == 1
    assert context.sessions == {} and context._pending == {}
    monkeypatch.setattr(contexts, "ServerSession", real_session)
    session = context.create_session_if_needed("id", token, None)
    assert session.id == "id" and len(runs) == 2


def test_undecodable_token_fails_creation_cleanly():
    core = make_core({"/x": lambda doc: None})
    context = core.applications["/x"]
    with pytest.raises(Exception):
        context.create_session_if_needed("id", "not-a-token", None)
    assert context.sessions == {} and context._pending == {}


def test_app_code_error_is_logged_and_session_served(caplog):
    def modify(doc):
        doc.add_root(Div(text="before"))
        raise RuntimeError("app bug")

    core = make_core({"/x": modify})
    with caplog.at_level(logging.ERROR):
        session = new_session(core)
    assert "app bug" in caplog.text
    assert len(session.document.roots) == 1


def test_session_context_and_request_from_token():
    seen = {}

    def modify(doc):
        ctx = doc.session_context
        seen.update(id=ctx.id, args=ctx.request.arguments, headers=ctx.request.headers,
                    cookies=ctx.request.cookies, payload=ctx.token_payload, path=ctx.request.path,
                    server_context=ctx.server_context, ctx=ctx)

    core = make_core({"/x": modify})
    live = RequestInfo.from_environ({"PATH_INFO": "/x/ws", "QUERY_STRING": "ws=1", "HTTP_X_WS": "1"})
    payload = {"headers": {"X-Page": "p"}, "cookies": {"c": "v"},
               "arguments": {"a": [b"1"], "bokeh-session-id": [b"sid"]}, "extra": b"\x00"}
    session = new_session(core, session_id="sid", payload=payload, request=live)
    assert seen["id"] == "sid"
    assert seen["args"] == {"a": [b"1"]}
    assert seen["headers"] == {"X-Page": "p", "Cookie": "c=v"}
    assert seen["cookies"] == {"c": "v"}
    assert seen["payload"]["extra"] == b"\x00"
    assert seen["path"] == "/x/ws"  # other attributes from the live request
    assert isinstance(seen["ctx"], SessionContext) and isinstance(seen["server_context"], ServerContext)
    assert seen["ctx"].session is session and session.context is seen["ctx"]
    assert session.document.session_context is seen["ctx"]
    assert seen["ctx"].destroyed is False


def test_session_request_falls_back_to_live_request_without_payload():
    seen = {}
    core = make_core({"/x": lambda doc: seen.update(args=doc.session_context.request.arguments)})
    live = RequestInfo.from_environ({"QUERY_STRING": "foo=bar&bokeh-session-id=z"})
    new_session(core, request=live)  # token minted like bokeh.client: no arguments in it
    assert seen["args"] == {"foo": [b"bar"]}


def test_lifecycle_hooks_run():
    log = []
    core = make_core({"/x": Application(RecordingHandler(log, yield_in_hooks=True))})
    context = core.applications["/x"]
    session = new_session(core, session_id="s1")
    assert log == [("created", "s1"), ("modify", "s1")]  # created before the app code
    context.discard_session(session)
    assert log[-1] == ("destroyed", "s1")
    assert session.destroyed and session.context.destroyed
    assert "s1" not in context.sessions


def test_with_locked_document_inside_on_session_created():
    results = []

    class Hook(Handler):
        def modify_document(self, doc):
            pass

        async def on_session_created(self, ctx):
            results.append(await ctx.with_locked_document(lambda doc: doc.add_root(Div(text="hook")) or "ran"))

    core = make_core({"/x": Application(Hook())})
    session = new_session(core)
    assert results == ["ran"]
    assert [r.text for r in session.document.roots] == ["hook"]


def test_with_locked_document_after_creation_holds_the_lock():
    from bokeh_flask.app.runtime.asyncio_loop import resolve

    core = make_core({"/x": lambda doc: doc.add_root(Div(text="a"))})
    session = new_session(core)
    observed = []

    def change(doc):
        observed.append(session._lock.locked())
        doc.roots[0].text = "b"
        return 42

    assert resolve(session.context.with_locked_document(change)) == 42
    assert observed == [True]
    assert session.document.roots[0].text == "b"


def test_discard_destroys_document_stops_callbacks_runs_destroy_hooks():
    ticks, destroyed = [], []

    def modify(doc):
        doc.add_root(Div(text="x"))
        doc.add_periodic_callback(lambda: ticks.append(1), 10)
        doc.on_session_destroyed(lambda ctx: destroyed.append(ctx.id))

    core = make_core({"/x": modify})
    context = core.applications["/x"]
    session = new_session(core, session_id="d1")
    with gevent.Timeout(10):  # the callback runs (every 10 ms; later on a loaded machine)
        while len(ticks) < 2:
            gevent.sleep(0.01)
    doc = session.document
    context.discard_session(session)
    n = len(ticks)
    gevent.sleep(0.06)
    assert len(ticks) == n
    assert destroyed == ["d1"]
    assert session.destroyed
    assert len(session._callbacks) == 0
    assert doc.session_context is None
    assert "d1" not in context.sessions
    # idempotent
    context.discard_session(session)
    assert destroyed == ["d1"]


def test_destroy_hooks_via_function_handler_app_and_application_handler_both_run():
    log, destroyed = [], []

    def modify(doc):
        doc.on_session_destroyed(lambda ctx: destroyed.append(ctx.id))

    app = Application(FunctionHandler(modify), RecordingHandler(log))
    core = make_core({"/x": app})
    context = core.applications["/x"]
    session = new_session(core, session_id="both")
    context.discard_session(session)
    assert destroyed == ["both"]
    assert ("destroyed", "both") in log


def test_failing_destroy_hooks_are_logged(caplog):
    def modify(doc):
        doc.on_session_destroyed(lambda ctx: 1 / 0)

    class BadHook(Handler):
        def modify_document(self, doc):
            pass

        async def on_session_destroyed(self, ctx):
            raise RuntimeError("hook failed")

    core = make_core({"/x": Application(FunctionHandler(modify), BadHook())})
    context = core.applications["/x"]
    session = new_session(core)
    with caplog.at_level(logging.ERROR):
        context.discard_session(session)
    assert session.destroyed and session.id not in context.sessions
    assert "ZeroDivisionError" in caplog.text and "hook failed" in caplog.text


def test_discard_skips_sessions_with_connections():
    core = make_core({"/x": lambda doc: None})
    context = core.applications["/x"]
    session = new_session(core)
    connection = core.open_connection(context, session.id, session.token, RequestInfo(), FakeTransport())
    context.discard_session(session)
    assert not session.destroyed and session.id in context.sessions
    core.close_connection(connection)
    context.discard_session(session)
    assert session.destroyed and session.id not in context.sessions


def test_session_recreated_after_discard_runs_app_again():
    runs = []
    core = make_core({"/x": lambda doc: runs.append(1)})
    context = core.applications["/x"]
    s1 = new_session(core, session_id="again")
    context.discard_session(s1)
    s2 = new_session(core, session_id="again")
    assert s2 is not s1 and len(runs) == 2


def test_server_lifecycle_hooks():
    log = []

    class ServerHooks(Handler):
        def modify_document(self, doc):
            pass

        def on_server_loaded(self, server_context):
            log.append(("loaded", type(server_context).__name__))

        def on_server_unloaded(self, server_context):
            log.append("unloaded")
            raise RuntimeError("ignored")

    core = make_core({"/x": Application(ServerHooks())})
    core.ensure_started()
    core.ensure_started()  # once per process
    assert log == [("loaded", "ServerContext")]
    core.stop()
    assert log[-1] == "unloaded"


def test_expired_sessions_selection(monkeypatch):
    core = make_core({"/x": lambda doc: None})
    context = core.applications["/x"]
    idle, busy, fresh, blocked, requested = (new_session(core, session_id=n)
                                             for n in ("idle", "busy", "fresh", "blocked", "requested"))
    for s in (idle, busy, blocked):
        s._last_unsubscribe -= 100
    busy.subscribe(object())
    blocked._expiration_blocked += 1
    requested.request_expiration()
    assert {s.id for s in context.expired_sessions(10)} == {"idle", "requested"}


def test_running_a_script_app_keeps_sys_path_and_argv_the_same_lists(tmp_path):
    """Bokeh's code runner puts back copies of sys.path and sys.argv after each run; the
    originals stay the live lists (with what Bokeh put back in them), so session builds
    leave no fresh long-lived lists behind."""
    import sys

    from bokeh.application.handlers.script import ScriptHandler

    script = tmp_path / "app.py"
    script.write_text("import sys\nfrom bokeh.io import curdoc\nfrom bokeh.models import Div\n"
                      "curdoc().add_root(Div(text=str(len(sys.argv))))\n")
    core = make_core({"/x": Application(ScriptHandler(filename=str(script)))})
    path, argv = sys.path, sys.argv
    path_before, argv_before = list(path), list(argv)
    session = new_session(core)
    assert session.document.roots[0].text == "1"   # the app saw Bokeh's own argv
    assert sys.path is path and sys.argv is argv
    assert sys.path == path_before and sys.argv == argv_before


def test_unused_session_whose_lock_is_busy_is_discarded_once_the_lock_is_free():
    """A session whose callbacks hold the lock whenever the cleanup job looks still expires:
    a greenlet waits for the lock (the work in progress finishes first) and discards it."""
    core = make_core({"/x": lambda doc: None})
    context = core.applications["/x"]
    session = new_session(core, session_id="busy-lock")
    session._last_unsubscribe -= 100
    with session.locked():
        assert context.expired_sessions(10) == []
        assert context.discard_when_free(10) == 1
        assert context.discard_when_free(10) == 0  # one waiting greenlet per session
        gevent.sleep(0.01)
        assert not session.destroyed  # the work holding the lock is not cut short
    assert wait_until(lambda: session.destroyed and "busy-lock" not in context.sessions)
