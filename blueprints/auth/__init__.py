"""Logins on the web side: Flask-Login as Bokeh's auth provider (:mod:`.flask_login_auth`),
the login and logout pages and an auth module's Tornado handlers (:mod:`.login_handlers`),
the current request's user (:mod:`.users`), and single sign-on through Authlib
(:mod:`.oauth_login`, its pages in :mod:`.oauth_views`)."""
