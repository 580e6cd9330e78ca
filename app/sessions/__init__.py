"""The engine: one worker's apps, sessions and connections, without I/O.

:class:`.server.ServerCore` owns the application contexts (:mod:`.contexts`), their
sessions (:mod:`.session`), the connections (:mod:`.connection`) and their message handling
(:mod:`.protocol_handler`, :mod:`.frames`, :mod:`.callbacks`), session ids and tokens
(:mod:`.tokens`), the unused-session cleanup (:mod:`.cleanup`) and what a logout ends
(:mod:`.user_sessions`). :mod:`.errors` and
:mod:`.requests` are the vocabulary every layer shares: errors that carry their HTTP
status or close code, and the facts of a request.

No Flask request globals and no socket: the transport (``bokeh_flask.blueprints``) parses
requests, calls in here and writes the answers. May import :mod:`bokeh_flask.app.config`,
:mod:`bokeh_flask.app.runtime`, :mod:`bokeh_flask.app.apps` and :mod:`bokeh_flask.app.auth`.
"""
