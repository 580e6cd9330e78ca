"""bokeh-flask's transport: the ``BokehServer`` Flask extension (:mod:`.extension`) and the
views, each parsing a request, calling the core (``bokeh_flask.app``) and writing the answer.

The route table is :mod:`.routes`. HTTP views are named as Bokeh's (``RootHandler``,
``DocHandler``, ``AutoloadJsHandler``, ``MetadataHandler``, ``StaticHandler``, in
``<name>_handler.py``); the websocket (``WSHandler``, frames, compression, passing a
connection to its session's worker) is in :mod:`.websocket`, logins in :mod:`.auth`,
broadcasts to every session on every worker and host in :mod:`.broadcast`.
May import anything of ``bokeh_flask.app``; nothing there imports this package.
"""
from __future__ import annotations

from .auth.flask_login_auth import FlaskLoginAuth
from .broadcast import BroadcastError, broadcast, on_broadcast
from .extension import BokehServer, create_app

__all__ = ["BokehServer", "BroadcastError", "FlaskLoginAuth", "broadcast", "create_app", "on_broadcast"]
