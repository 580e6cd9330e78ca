"""Shows the request its session was made from (cookie digests, headers, arguments) and
the process that built it, with a text box echoed back through Python."""
import hashlib
import json
import os

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Div, TextInput

request = curdoc().session_context.request
facts = {
    "cookies": {name: hashlib.sha256(value.encode()).hexdigest()[:12]
                for name, value in sorted(request.cookies.items())},
    "headers": dict(request.headers),
    "arguments": {k: [x.decode() for x in v] for k, v in sorted(request.arguments.items())},
}
echo = Div(name="echo", text="")
box = TextInput(name="box")
box.on_change("value", lambda attr, old, new: setattr(echo, "text", f"echo {new}"))
curdoc().add_root(column(box, Div(name="facts", text=json.dumps(facts, sort_keys=True)),
                         Div(name="pid", text=str(os.getpid())), echo))
