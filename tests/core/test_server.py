"""bokeh_flask.app.sessions.server.ServerCore: session requests, connections, unused-session cleanup, jobs."""
from __future__ import annotations

import time

import gevent
import gevent.event
import pytest
from bokeh.application import Application
from bokeh.application.handlers.handler import Handler
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div

from bokeh_flask.app.sessions.errors import HTTPError
from bokeh_flask.app.sessions.requests import RequestInfo
from bokeh_flask.app.sessions.tokens import decode_token
from tests.support.core import FakeTransport, make_core, new_session, wait_until


def test_apps_from_mapping_function_and_application():
    core = make_core({"x": lambda doc: None, "/y/": Application()})
    assert set(core.applications) == {"/x", "/y"}
    assert make_core(lambda doc: None).applications.keys() == {"/"}
    with pytest.raises(HTTPError) as err:
        core.application_context("/nope")
    assert err.value.status == 404


def test_session_for_request_creates_then_joins_with_fresh_tokens():
    runs = []
    core = make_core({"/x": lambda doc: runs.append(doc)})
    context = core.applications["/x"]
    r = RequestInfo.from_environ({"QUERY_STRING": "bokeh-session-id=shared&a=1", "HTTP_X_A": "1"})
    s1 = core.session_for_request(context, r)
    s2 = core.session_for_request(context, r)
    assert len(runs) == 1
    assert s1.id == s2.id == "shared"
    assert s1.document is s2.document
    for s in (s1, s2):
        sid, payload = core.tokens.verify(s.token, check_expiry=True)
        assert sid == "shared" and "arguments" not in payload  # kept on the server
        assert core.facts.expand(sid, None, payload)["arguments"]["a"] == [b"1"]
    assert s1.document.session_context.token_payload["arguments"]["a"] == [b"1"]


def test_session_for_request_uses_process_request():
    class PR(Handler):
        def modify_document(self, doc):
            pass

        def process_request(self, request):
            return {"uri": request.uri, "user": "ann"}

    core = make_core({"/x": Application(PR())})
    s = core.session_for_request(core.applications["/x"], RequestInfo.from_environ(
        {"PATH_INFO": "/x", "QUERY_STRING": "q=1"}))
    payload = core.facts.expand(s.id, None, decode_token(s.token)[1])
    assert payload["uri"] == "/x?q=1" and payload["user"] == "ann"
    assert s.session.context.token_payload["user"] == "ann"


@pytest.mark.parametrize("result", [None, ["not", "a", "dict"]])
def test_process_request_bad_result_is_500(result):
    class PR(Handler):
        def modify_document(self, doc):
            pass

        def process_request(self, request):
            return result

    core = make_core({"/x": Application(PR())})
    with pytest.raises(HTTPError) as err:
        core.session_for_request(core.applications["/x"], RequestInfo())
    assert err.value.status == 500


def test_session_for_request_errors_propagate():
    core = make_core({"/x": lambda doc: None}, session_ids="external-signed", secret_key="k" * 44)
    with pytest.raises(HTTPError) as err:
        core.session_for_request(core.applications["/x"], RequestInfo())
    assert (err.value.status, err.value.reason) == (403, "No bokeh-session-id provided")


def test_open_connection_sends_ack_first_and_close_detaches():
    core = make_core({"/x": lambda doc: doc.add_root(Div())})
    context = core.applications["/x"]
    sid = core.tokens.new_session_id()
    token = core.tokens.new_token(sid)
    t = FakeTransport()
    c = core.open_connection(context, sid, token, RequestInfo(), t)
    assert t.msgtypes() == ["ACK"]
    assert c in core.connections and context.sessions[sid].connection_count == 1
    assert core.stats() == {"sessions": 1, "connections": 1, "tasks": 0}
    core.close_connection(c)
    core.close_connection(c)
    assert c not in core.connections and context.sessions[sid].connection_count == 0


def test_cleanup_discards_only_idle_sessions_past_lifetime():
    destroyed = []

    def modify(doc):
        doc.on_session_destroyed(lambda ctx: destroyed.append(ctx.id))

    core = make_core({"/x": modify}, unused_session_lifetime=150)
    context = core.applications["/x"]
    old = new_session(core, session_id="old")
    connected = new_session(core, session_id="connected")
    connection = core.open_connection(context, "connected", connected.token, RequestInfo(), FakeTransport())
    gevent.sleep(0.2)
    young = new_session(core, session_id="young")
    assert core.cleanup.discard_unused() == 1
    assert destroyed == ["old"]
    assert set(context.sessions) == {"connected", "young"}
    assert old.destroyed and not connected.destroyed and not young.destroyed

    # a connected session is never discarded, however long it lives
    gevent.sleep(0.2)
    assert core.cleanup.discard_unused() == 1  # young is now idle
    assert set(context.sessions) == {"connected"}

    # once its connection closes, the lifetime counts from the unsubscribe
    core.close_connection(connection)
    assert core.cleanup.discard_unused() == 0
    gevent.sleep(0.2)
    assert core.cleanup.discard_unused() == 1
    assert context.sessions == {}
    assert sorted(destroyed) == ["connected", "old", "young"]


def test_cleanup_respects_lock_and_requested_expiration():
    core = make_core({"/x": lambda doc: None}, unused_session_lifetime=50)
    context = core.applications["/x"]
    busy = new_session(core, session_id="busy")
    wanted = new_session(core, session_id="wanted")
    wanted.request_expiration()
    holding = gevent.event.Event()
    release = gevent.event.Event()

    def hold_lock():
        with busy.locked():
            holding.set()
            release.wait(5)

    g = gevent.spawn(hold_lock)
    holding.wait(5)
    assert core.cleanup.discard_unused() == 1  # wanted goes at once, although it is young
    assert set(context.sessions) == {"busy"}
    gevent.sleep(0.1)
    assert core.cleanup.discard_unused() == 0  # busy is past its lifetime but locked: not now,
    assert set(context.sessions) == {"busy"}
    release.set()
    g.join(5)
    assert wait_until(lambda: context.sessions == {})  # but once the lock is free


def test_cleanup_keeps_a_session_that_gains_a_connection_while_waiting_for_its_lock():
    core = make_core({"/x": lambda doc: None}, unused_session_lifetime=10)
    context = core.applications["/x"]
    session = new_session(core, session_id="revive")
    gevent.sleep(0.05)
    assert session in context.expired_sessions(0.01)
    holding, release = gevent.event.Event(), gevent.event.Event()

    def hold_then_connect():
        with session.locked():
            holding.set()
            release.wait(5)
            session.subscribe(object())

    g = gevent.spawn(hold_then_connect)
    holding.wait(5)
    discarder = gevent.spawn(context.discard_session, session)
    gevent.sleep(0.02)
    release.set()
    gevent.joinall([g, discarder], timeout=5, raise_error=True)
    assert not session.destroyed and "revive" in context.sessions


def recorded_cleanup(monkeypatch, sessions: int, idle: list[bool] | None = None, **limits: int):
    """A core with ``sessions`` live sessions whose cleanup passes record, in the returned
    list, the reclaims and trims they run; ``limits`` override app/sessions/cleanup.py's thresholds,
    and ``idle[0]`` says whether the worker was idle since the last pass (never if None).
    Returns ``expire(*indexes)`` (expire those sessions, run a pass) and that list."""
    from bokeh_flask.app.runtime import memory
    from bokeh_flask.app.sessions import cleanup

    calls: list[str] = []
    for name, value in limits.items():
        monkeypatch.setattr(cleanup, name, value)
    monkeypatch.setattr(memory, "reclaim_arenas",
                        lambda rescan_frozen=True: calls.append("reclaim+rescan" if rescan_frozen else "reclaim"))
    monkeypatch.setattr(memory, "malloc_trim", lambda: calls.append("trim"))
    monkeypatch.setattr(memory, "rescan_due", lambda after_discards: False)
    core = make_core({"/x": lambda doc: None})
    monkeypatch.setattr(core.cleanup, "idle_since_last_pass", lambda: bool(idle and idle[0]))
    live = [new_session(core, session_id=f"s{i}") for i in range(sessions)]

    def expire(*indexes: int) -> int:
        for i in indexes:
            live[i].request_expiration()
        count = core.cleanup.run_pass()
        gevent.sleep(0)  # the idle reclaim runs from the hub, once the pass is over
        return count

    return expire, calls


def test_cleanup_pass_reclaims_arenas_once_a_burst_is_gone(monkeypatch):
    expire, calls = recorded_cleanup(monkeypatch, 5, TRIM_AFTER_DISCARDS=3, RECLAIM_MAX_SESSIONS=1)
    # a large pass with too many sessions left: glibc's free memory only
    assert expire(0, 1, 2) == 3 and calls == ["trim"]
    # the burst's last sessions go: the discards add up, and few are left
    assert expire(3) == 1 and calls == ["trim", "reclaim", "trim"]
    # counting starts again after a reclaim
    assert expire(4) == 1 and calls == ["trim", "reclaim", "trim"]
    assert expire() == 0 and calls == ["trim", "reclaim", "trim"]


def test_cleanup_pass_reclaims_once_more_when_the_worker_is_next_idle(monkeypatch):
    """Free lists and the method cache refill with blocks among the expired sessions'
    memory while requests go on; a reclaim once the worker is idle empties them."""
    idle = [False]
    expire, calls = recorded_cleanup(monkeypatch, 3, idle, TRIM_AFTER_DISCARDS=2, RECLAIM_MAX_SESSIONS=1)
    # no reclaim yet: nothing to do when idle
    idle[0] = True
    assert expire() == 0 and calls == []
    idle[0] = False
    assert expire(0, 1) == 2 and calls == ["reclaim", "trim"]
    # busy: wait
    assert expire() == 0 and calls == ["reclaim", "trim"]
    # a pass that discards is not the quiet one
    idle[0] = True
    assert expire(2) == 1 and calls == ["reclaim", "trim"]
    # idle and nothing to discard: once more (frozen objects too), then no more
    assert expire() == 0 and calls == ["reclaim", "trim", "reclaim+rescan", "trim"]
    assert expire() == 0 and calls == ["reclaim", "trim", "reclaim+rescan", "trim"]


def test_cleanup_passes_rescan_frozen_objects_when_due(monkeypatch):
    """A burst's reclaim rescans frozen objects only when memory grew (the ~60 ms start-up
    heap is in the rescan); a pass without discards asks too (the interval); the idle
    reclaim always rescans, as nothing waits on it."""
    from bokeh_flask.app.runtime import memory

    idle = [False]
    expire, calls = recorded_cleanup(monkeypatch, 6, idle, TRIM_AFTER_DISCARDS=2, RECLAIM_MAX_SESSIONS=1,
                                     COLLECT_AFTER_DISCARDS=100)
    due = [False]
    asked: list[bool] = []
    monkeypatch.setattr(memory, "rescan_due", lambda after_discards: asked.append(after_discards) or due[0])
    monkeypatch.setattr(memory, "rescan", lambda: calls.append("rescan"))
    assert expire() == 0 and asked == [False] and calls == []
    due[0] = True
    assert expire() == 0 and asked == [False] * 2 and calls == ["rescan"]
    due[0] = False
    assert expire(0, 1, 2, 3, 4) == 5 and asked == [False, False, True] and calls == ["rescan", "reclaim", "trim"]
    idle[0] = True
    assert expire() == 0 and asked == [False, False, True] and calls == ["rescan", "reclaim", "trim",
                                                                         "reclaim+rescan", "trim"]
    due[0] = True
    assert expire(5) == 1 and asked[-1] is True and calls[-2:] == ["reclaim+rescan", "trim"]


def test_idle_since_last_pass_compares_cpu_time_with_wall_time(monkeypatch):
    from types import SimpleNamespace

    from bokeh_flask.app.sessions import cleanup

    clock = {"wall": 100.0, "cpu": 5.0}
    monkeypatch.setattr(cleanup, "time", SimpleNamespace(
        monotonic=lambda: clock["wall"], process_time=lambda: clock["cpu"], perf_counter=time.perf_counter))
    core = make_core({"/x": lambda doc: None})

    def after(wall: float, cpu: float) -> bool:
        clock["wall"] += wall
        clock["cpu"] += cpu
        return core.cleanup.idle_since_last_pass()

    assert after(10, 0.05)          # 0.5% of a core
    assert not after(10, 0.5)       # 5%
    assert not after(1, 0.011)      # just over 1%
    assert after(17, 0)


def test_cleanup_pass_collects_every_so_many_discards_however_many_are_left(monkeypatch):
    """Sessions churning under load never leave few live: their leftover cycles must still
    be collected, or they pile up until the next full collection (frozen ones until a
    rescan). The count to reach grows with the live sessions, as the collection's pause does."""
    expire, calls = recorded_cleanup(monkeypatch, 8, TRIM_AFTER_DISCARDS=100, COLLECT_AFTER_DISCARDS=2)
    # 3 discarded and 5 live: not yet; 4 and 4: collect
    assert [expire(i) for i in range(3)] == [1, 1, 1] and calls == []
    assert expire(3) == 1 and calls == ["reclaim", "trim"]
    # then 1 and 3: not yet; 2 and 2: collect
    assert expire(4) == 1 and calls == ["reclaim", "trim"]
    assert expire(5) == 1 and calls == ["reclaim", "trim"] * 2


def test_discarding_many_sessions_does_not_stall_other_greenlets():
    """A stall check, not a benchmark: a ticker greenlet must keep getting turns."""
    def modify(doc):
        # a few models each: Bokeh's model construction, not the discard, dominates the time
        source = ColumnDataSource(data={"x": list(range(200)), "y": list(range(200))})
        doc.add_root(column(Div(text="a"), Div(text="b")))
        doc.add_root(source)
        doc.add_periodic_callback(lambda: None, 60_000)
        doc.on_session_destroyed(lambda ctx: None)

    core = make_core({"/x": modify}, unused_session_lifetime=1)
    context = core.applications["/x"]
    for i in range(500):
        new_session(core, session_id=f"s{i}")
        if i % 50 == 0:
            gevent.sleep(0)
    assert len(context.sessions) == 500
    gevent.sleep(0.01)

    gaps = []
    stop = [False]

    def ticker():
        last = time.monotonic()
        while not stop[0]:
            gevent.sleep(0.001)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    t = gevent.spawn(ticker)
    gevent.sleep(0.01)
    started = time.monotonic()
    cleaner = gevent.spawn(core.cleanup.discard_unused)
    assert cleaner.get(timeout=120) == 500
    elapsed = time.monotonic() - started
    stop[0] = True
    t.join(2)
    assert context.sessions == {}
    assert max(gaps) < 0.5, (max(gaps), elapsed)


def test_ensure_started_runs_cleanup_and_keep_alive_jobs():
    core = make_core({"/x": lambda doc: None}, unused_session_lifetime=30, check_unused_sessions=20,
                     keep_alive=20)
    context = core.applications["/x"]
    try:
        core.ensure_started()
        idle = new_session(core)
        live = new_session(core)
        t = FakeTransport()
        c = core.open_connection(context, live.id, live.token, RequestInfo(), t)
        assert wait_until(lambda: idle.destroyed, timeout=3)
        assert not live.destroyed
        assert wait_until(lambda: len(t.pings) >= 3, timeout=3)
        assert t.pings[:3] == [b"0", b"1", b"2"]
        c.on_pong(b"2")
        assert c.pong_count == 2
        c.on_pong(b"junk")
        assert c.pong_count == 2
    finally:
        core.stop()
    n = len(t.pings)
    gevent.sleep(0.08)
    assert len(t.pings) == n


def test_keep_alive_zero_starts_no_ping_job():
    core = make_core({"/x": lambda doc: None}, keep_alive=0, stats_log_frequency=0)
    try:
        core.ensure_started()
        assert len(core._jobs) == 1
    finally:
        core.stop()
