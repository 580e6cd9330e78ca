"""gunicorn settings for bokeh-flask: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can still be overridden on the command line or with GUNICORN_CMD_ARGS.
"""
import os

#: Address to listen on; BOKEH_FLASK_BIND or the Bokeh default port.
bind = os.environ.get("BOKEH_FLASK_BIND", f"0.0.0.0:{os.environ.get('BOKEH_DEFAULT_SERVER_PORT', '5006')}")
#: The session layer runs on gevent: one process serves many websockets.
worker_class = "gevent"
#: Processes; sessions need no stickiness (the token rebuilds them on any worker).
workers = int(os.environ.get("BOKEH_FLASK_WORKERS", "1"))
#: Open websockets and requests per worker (each browser tab holds one websocket).
worker_connections = 10000
#: Seconds a worker may be silent before gunicorn restarts it (gevent workers stay responsive).
timeout = 60
#: Seconds to finish open requests and websockets on shutdown.
graceful_timeout = 10
#: Seconds to keep an idle HTTP keep-alive connection open.
keepalive = 5
#: Session tokens travel in the Sec-WebSocket-Protocol header and carry the page's
#: headers and cookies: allow large header lines (Tornado allows 64 KiB).
limit_request_field_size = 65536
limit_request_fields = 200
#: The websocket request line carries the page's query string.
limit_request_line = 16384
#: Log to stderr.
accesslog = os.environ.get("BOKEH_FLASK_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("BOKEH_PY_LOG_LEVEL", "info")
