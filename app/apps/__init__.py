"""Apps and the seam to Bokeh: turning paths and objects into Bokeh ``Application``s
(:mod:`.sources`), errors that name the app's file and line (:mod:`.load_errors`), the
pages and static files Bokeh renders (:mod:`.pages`, :mod:`.static_files`), ``curdoc``
and model ids per session, Panel's needs, the admin app, and the supported Bokeh range
(:mod:`.versions`). Every difference between Bokeh releases goes through
:mod:`.bokeh_compat`.

May import :mod:`bokeh_flask.app.config`, :mod:`bokeh_flask.app.runtime`, and the engine's
vocabulary (``sessions.errors``, ``sessions.requests``); Bokeh, never Flask.
"""
