"""A discarded session is freed by reference counting, and its leftovers stay harmless.

Bokeh documents are webs of reference cycles; ``ServerSession.destroy`` breaks them so a
discarded session's memory returns at once instead of waiting for a full garbage
collection (which an idle worker never runs). Each check runs with the cyclic collector
disabled: a weak reference that dies there was freed by reference counting alone.
"""
from __future__ import annotations

import gc
import textwrap
import weakref
from contextlib import contextmanager
from typing import Any, Iterator

import gevent
import pytest
from bokeh.document import without_document_lock
from bokeh.models import Div
from bokeh.plotting import figure

from bokeh_flask.app.runtime import memory
from bokeh_flask.app.sessions.requests import RequestInfo
from tests.support.core import FakeTransport, make_core, new_session

#: A script app with the usual cycle makers: a property callback and a periodic callback
#: that close over module globals, a destroy hook that closes over the document, a figure
#: whose explicit ranges replace the default ranges it built, and list/dict properties.
APP = textwrap.dedent("""
    from bokeh.io import curdoc
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, Div, TextInput
    from bokeh.plotting import figure

    doc = curdoc()
    out = Div(text="ready", tags=["a"], styles={"color": "red"})
    ti = TextInput(value="")
    source = ColumnDataSource(data=dict(x=[1, 2, 3], y=[4, 5, 6]))
    plot = figure(x_range=(0, 4), y_range=(0, 7), title="t")
    plot.line("x", "y", source=source)

    def on_value(attr, old, new):
        out.text = "got " + new

    def tick():
        out.text = str(len(doc.roots))

    ti.on_change("value", on_value)
    doc.add_periodic_callback(tick, 10_000)
    doc.on_session_destroyed(lambda ctx, doc=doc: doc.title)
    doc.add_root(column(ti, out, plot))
""")


@pytest.fixture
def app_core(tmp_path):
    script = tmp_path / "cycles.py"
    script.write_text(APP)
    return make_core({"/cycles": str(script)})


@contextmanager
def collector_off() -> Iterator[None]:
    """Collect what earlier tests left, then keep the cyclic collector off, with frozen
    objects back under it (so a ``gc.collect()`` in the block counts their garbage too)."""
    with memory.thawed():
        gc.collect()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if was_enabled:
                gc.enable()


def open_pull_close(core: Any, key: str):
    """A session that a websocket pulled, then left (the bench's idle session)."""
    session = new_session(core, key)
    connection = core.open_connection(core.applications[key], session.id, session.token,
                                      RequestInfo(), FakeTransport())
    session.pull(connection, "1")
    core.close_connection(connection)
    return session


def test_discarded_session_is_freed_by_reference_counting(app_core):
    context = app_core.applications["/cycles"]
    with collector_off():
        session = open_pull_close(app_core, "/cycles")
        doc = session.document
        refs = {
            "session": weakref.ref(session),
            "document": weakref.ref(doc),
            "session context": weakref.ref(session.context),
            "root": weakref.ref(doc.roots[0]),
            "figure": weakref.ref(next(m for m in doc.models if m.__class__.__name__ == "figure")),
        }
        del doc
        context.discard_session(session)
        del session
        gevent.sleep(0)  # let the hub deliver the kill to the periodic callback's greenlet
        alive = [name for name, ref in refs.items() if ref() is not None]
    assert alive == []


def test_discard_leaves_no_cyclic_garbage(app_core):
    context = app_core.applications["/cycles"]
    sessions = [new_session(app_core, "/cycles") for _ in range(5)]
    gevent.sleep(0)
    with collector_off():
        for session in sessions:
            context.discard_session(session)
        del sessions, session
        gevent.sleep(0)
        found = gc.collect()
    # before cycles were broken each discarded session of this app left hundreds
    assert found < 5


def test_function_handler_session_is_freed_too():
    def modify(doc):
        div = Div(text="x")
        doc.add_root(div)
        doc.add_next_tick_callback(lambda: setattr(div, "text", "y"))
        doc.on_session_destroyed(lambda ctx: doc.roots)

    core = make_core({"/f": modify})
    with collector_off():
        session = new_session(core, "/f")
        gevent.sleep(0)
        ref = weakref.ref(session.document)
        core.applications["/f"].discard_session(session)
        del session
        assert ref() is None


def test_greenlet_holding_a_destroyed_document_does_not_crash():
    """A ``nolock`` callback may still run while its session is discarded (it holds no
    lock, so it does not block expiry); what it reads afterwards is empty, not an error."""
    resume = gevent.event.Event()
    seen: list[Any] = []

    def modify(doc):
        div = Div(text="alive", tags=["t"])
        doc.add_root(div)

        @without_document_lock
        def slow():
            resume.wait()
            seen.append((div.text, list(div.tags), doc.session_context))
            doc.add_next_tick_callback(lambda: seen.append("must not run"))

        doc.add_next_tick_callback(slow)

    core = make_core({"/n": modify})
    context = core.applications["/n"]
    session = new_session(core, "/n")
    gevent.sleep(0)  # slow() starts and waits
    context.discard_session(session)
    assert session.destroyed and session.context.destroyed
    resume.set()
    gevent.sleep(0.01)
    assert seen == [("", [], None)]


def test_session_context_of_a_freed_session_reports_destroyed(app_core):
    context = app_core.applications["/cycles"]
    session = new_session(app_core, "/cycles")
    session_context = session.context
    assert session_context.session is session and not session_context.destroyed
    context.discard_session(session)
    del session
    gevent.sleep(0)
    assert session_context.session is None
    assert session_context.destroyed


def test_destroyed_model_reads_defaults():
    """Models the app still holds after discard read as freshly made ones."""
    plot = figure(x_range=(0, 1), title="kept")

    def modify(doc):
        doc.add_root(plot)

    core = make_core({"/m": modify})
    session = new_session(core, "/m")
    core.applications["/m"].discard_session(session)
    assert plot.document is None
    assert plot.title is not None and plot.renderers == []
