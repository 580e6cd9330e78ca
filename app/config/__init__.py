"""Configuration: every setting declared once (:mod:`.options`, with what a declaration
holds in :mod:`.declare` and the checks in :mod:`.checks`), read from every source and
validated (:mod:`.settings`), the README's table of them (:mod:`.reference`), the server's
private directory (:mod:`.state_dir`) and the websocket origin allowlist (:mod:`.origins`).

Imports nothing else of bokeh-flask, and neither Flask, Bokeh nor gevent: the gunicorn
master and the CLI validate a configuration before any worker imports the web stack.
"""
