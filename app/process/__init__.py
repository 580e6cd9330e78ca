"""The gunicorn master's side: ``bokeh-flask`` (:mod:`.cli`), gunicorn's settings and hooks
(:mod:`.gunicorn_config`), our gevent worker class (:mod:`.worker`) and the refusal of
unsuitable ones (:mod:`.worker_class`), and the files ``--dev`` watches (:mod:`.dev_reload`).

May import :mod:`bokeh_flask.app.config`, :mod:`bokeh_flask.app.runtime`,
:mod:`bokeh_flask.app.apps` and :mod:`bokeh_flask.app.auth` at module level, none of which
loads Flask or Bokeh there: the master stays lean. Hooks that run in a worker import the
web layer inside their functions.
"""
