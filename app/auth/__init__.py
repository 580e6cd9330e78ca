"""Who may use the apps: Bokeh's auth-provider contract (:mod:`.providers`), an auth
module's Tornado handlers (:mod:`.tornado_bridge`), live logins in a store every worker
reads (:mod:`.logins`; in Redis: :mod:`.redis_logins`), logouts that reach every worker and
host (:mod:`.logout_events`, :mod:`.pending_logouts`), the login throttle (:mod:`.throttle`),
and single sign-on's core: its provider settings and start-up check (:mod:`.oauth_config`)
and who may use which app (:mod:`.access`).

May import :mod:`bokeh_flask.app.config`, :mod:`bokeh_flask.app.runtime`, and the engine's
vocabulary (``sessions.errors``, ``sessions.requests``); never Flask. Flask-Login's side
lives in :mod:`bokeh_flask.blueprints.auth`.
"""
