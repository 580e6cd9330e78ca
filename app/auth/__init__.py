"""Who may use the apps: Bokeh's auth-provider contract (:mod:`.providers`), an auth
module's Tornado handlers (:mod:`.tornado_bridge`), live logins in a store every worker
reads (:mod:`.logins`), logouts that reach every worker and host (:mod:`.logout_events`,
:mod:`.pending_logouts`), and the login throttle (:mod:`.throttle`).

May import :mod:`bokeh_flask.app.config`, :mod:`bokeh_flask.app.runtime`, and the engine's
vocabulary (``sessions.errors``, ``sessions.requests``); never Flask. Flask-Login's side
lives in :mod:`bokeh_flask.blueprints.auth`.
"""
