"""A tiny directory app that makes session lifetime observable from a browser test.

``sid`` shows the session id; ``ticks`` is advanced by a 100 ms periodic callback (so a test
can wait, on a condition, for longer than the unused-session lifetime); the destroy hooks
print a line naming the session, which lands in the server log.
"""
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Div

doc = curdoc()
sid = doc.session_context.id if doc.session_context else "none"
state = {"n": 0}
ticks = Div(name="ticks", text="0")


def tick():
    state["n"] += 1
    ticks.text = str(state["n"])


def document_destroyed(session_context):
    print(f"lifecycle: document of session {session_context.id} destroyed", flush=True)


doc.add_periodic_callback(tick, 100)
doc.on_session_destroyed(document_destroyed)
doc.add_root(column(Div(name="sid", text=sid), ticks))
doc.title = "Lifecycle"
