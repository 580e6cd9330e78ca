"""bokeh-flask's core: settings, application contexts, sessions, connections, protocol
handling, tokens and origins.

Nothing in this package imports Flask's request globals or touches a socket: the web layer
(``blueprints``) parses requests and writes answers, and calls in here.
"""
