"""Hardening tests (issue 3): shows what the session's request carried (from the token).

The Div's text is "<number of cookies> <sum of cookie value lengths> <number of headers>",
so a session rebuilt on the websocket from a big token can be checked against the page
request that minted it.
"""
from bokeh.io import curdoc
from bokeh.models import Div

request = curdoc().session_context.request
cookies = dict(request.cookies)
summary = f"{len(cookies)} {sum(len(v) for v in cookies.values())} {len(dict(request.headers))}"
curdoc().add_root(Div(text=summary, name="summary"))
curdoc().title = "hard cookies"
