"""A Bokeh app that greets the logged-in user and offers a logout button.

``curdoc().session_context.user`` is the identity of the user who opened the page (the
same on every worker: it travels in the session token); ``logout_url`` is the server's
logout page under its prefix.
"""
import json

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Button, CustomJS, Paragraph
from bokeh.plotting import figure

context = curdoc().session_context
user = context.user

# Paragraph renders plain text, so a user name can never inject HTML into the page
greeting = Paragraph(text=f"Hello, {user}!", name="greeting")
logout = Button(label="Log out", name="logout", button_type="warning")
logout.js_on_event("button_click", CustomJS(code=f"window.location.href = {json.dumps(context.logout_url)}"))

plot = figure(title=f"{user}'s plot", height=300, width=500, toolbar_location=None)
plot.line([1, 2, 3, 4, 5], [6, 7, 2, 4, 5], line_width=3)

curdoc().add_root(column(greeting, plot, logout))
curdoc().title = "Hello, user"
