"""Configuration: every setting with its default and validation (:mod:`.settings`), the
server's private directory (:mod:`.state_dir`) and the websocket origin allowlist
(:mod:`.origins`).

Imports nothing else of bokeh-flask, and neither Flask, Bokeh nor gevent: the gunicorn
master and the CLI validate a configuration before any worker imports the web stack.
"""
