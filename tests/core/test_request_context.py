"""The page-facts keeper while its store fails: one warning, small tokens all the same, and
the store left alone for a while instead of being waited on by every page."""
from __future__ import annotations

import logging

import pytest

from bokeh_flask.app.sessions import request_context
from bokeh_flask.app.sessions.errors import HTTPError
from bokeh_flask.app.sessions.request_context import PageFacts, PageFactsKeeper
from bokeh_flask.app.sessions.tokens import CONTEXT_KEY


class Store:
    """A store in memory that can be made to fail, counting the calls that reach it."""

    def __init__(self) -> None:
        self.facts: dict[str, PageFacts] = {}
        self.down = False
        self.calls = 0

    def put(self, ref: str, facts: PageFacts, ttl: float) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("store down")
        self.facts[ref] = facts

    def get(self, ref: str) -> PageFacts | None:
        self.calls += 1
        if self.down:
            raise ConnectionError("store down")
        return self.facts.get(ref)


def test_facts_come_back_for_their_session_and_user_only():
    keeper = PageFactsKeeper(Store(), ttl=60)
    ref = keeper.keep("s1", "ann", {"cookies": {"c": "v"}})
    assert keeper.expand("s1", "ann", {CONTEXT_KEY: ref, "x": 1}) == {"cookies": {"c": "v"}, "x": 1}
    for session_id, user in (("s2", "ann"), ("s1", "bob"), ("s1", None)):
        with pytest.raises(HTTPError) as refused:
            keeper.expand(session_id, user, {CONTEXT_KEY: ref})
        assert refused.value.status == 403


def test_a_failing_store_is_warned_about_once_and_rested(monkeypatch, caplog):
    clock = [1000.0]
    monkeypatch.setattr(request_context.time, "monotonic", lambda: clock[0])
    store = Store()
    keeper = PageFactsKeeper(store, ttl=60)
    store.down = True
    with caplog.at_level(logging.WARNING):
        refs = [keeper.keep(f"s{i}", None, {"cookies": {}}) for i in range(10)]
        assert all(refs) and len(set(refs)) == 10  # every page still gets a small token
        assert store.calls == 1  # the rest did not wait on the store
        assert keeper.expand("s0", None, {CONTEXT_KEY: refs[0]}) == {}  # rebuilt from the websocket
        assert store.calls == 1
        clock[0] += request_context.RETRY_AFTER + 0.1
        store.down = False
        ref = keeper.keep("s10", None, {"cookies": {"c": "v"}})
        assert store.calls == 2 and keeper.expand("s10", None, {CONTEXT_KEY: ref}) == {"cookies": {"c": "v"}}
    outage = [r for r in caplog.records if "said once until the store answers again" in r.getMessage()]
    assert len(outage) == 1
    assert any("answers again" in r.getMessage() and "said once" not in r.getMessage() for r in caplog.records)
