"""bokeh-flask's core: everything but the Flask views, in layers by job.

Each subpackage says in its docstring what it is and what it may import at module level
(``python -m tests.support.import_graph`` prints the graph and checks the rules; a test
runs the same checks):

- ``config``: settings, their validation, the server's private directory, the origin
  allowlist. Imports nothing else of ours, nor Flask, Bokeh or gevent: the gunicorn master
  and the CLI read it before any worker exists.
- ``runtime``: the worker process's machinery: the asyncio loop on the gevent hub, timers,
  memory, metrics, stats files, which worker owns a session. May import ``config``.
- ``apps``: loading apps and the seam to Bokeh (every difference between Bokeh releases
  lives in ``apps.bokeh_compat``). May import ``config``, ``runtime`` and the engine's
  vocabulary (``sessions.errors``, ``sessions.requests``).
- ``auth``: auth providers, the login store, logouts across workers and hosts, the login
  throttle. May import what ``apps`` may.
- ``sessions``: the I/O-free engine: ``ServerCore``, application contexts, sessions,
  connections, the protocol handler, tokens. No Flask request globals, no socket. May
  import ``config``, ``runtime``, ``apps`` and ``auth``.
- ``process``: the gunicorn master's side: the CLI, gunicorn's settings and hooks, the
  worker class. May import ``config``, ``runtime``, ``apps`` and ``auth``; it reaches the
  web layer only inside functions that run in a worker.

``bokeh_flask.blueprints`` (the transport) may import all of these. The modules
``settings``, ``gunicorn_config`` and ``worker`` here only re-export their new homes, for
gunicorn configurations written against the old paths.
"""
