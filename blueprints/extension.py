"""bokeh-flask's web layer: the ``BokehServer`` extension and one blueprint per view.

``BokehServer(app, apps=..., url_prefix=...)`` (or ``BokehServer()`` then ``init_app``)
builds the core for a Flask app from its config, the ``BOKEH_*`` environment and keyword
settings, and registers the blueprints. State lives in ``app.extensions["bokeh_flask"]``,
so one extension object can serve several Flask apps.

``auth=`` picks the authentication (see :mod:`blueprints.auth.login_handlers`): a ``FlaskLoginAuth``, any
other ``AuthProvider``, or the path of a ``bokeh serve``-style auth module; without it the
``auth_module`` setting (``BOKEH_AUTH_MODULE``) applies, else there is none.
"""
from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from ..app.apps.sources import AppSources
from ..app.auth.providers import AuthProvider
from ..app.config.settings import build_settings, normalize_prefix
from ..app.process.worker_class import refuse_unsuitable_worker
from ..app.sessions.server import ServerCore
from .auth.flask_login_auth import FlaskLoginAuth
from .auth.login_handlers import install_auth, with_cookie_secret
from .broadcast import channel_for, register_core
from .routes import register_routes
from .views import http_exception_response
from .websocket.ws_socket import NoEvent, NoReaderThread

__all__ = ["BokehServer", "FlaskLoginAuth", "create_app"]

#: What ``auth=`` accepts: a provider, or the path of an auth module file.
AuthSpec = AuthProvider | str | os.PathLike[str] | None

log = logging.getLogger(__name__)

#: Flask-Sock options our websockets need; see ``_sock_options``.
RECEIVE_BYTES = 65536


def _ensure_gevent() -> None:
    """The session layer runs on gevent; make sure sockets and threads cooperate."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        log.warning("gevent monkey-patching was not applied; applying it now (run under "
                    "`gunicorn -k gevent` or call gevent.monkey.patch_all() first to avoid this)")
        monkey.patch_all()


class BokehServer:
    """The Flask extension: serves Bokeh apps from a Flask app."""

    def __init__(self, app: Flask | None = None, apps: AppSources = None, url_prefix: str = "",
                 name: str = "bokeh", auth: AuthSpec = None, **settings: Any) -> None:
        self.apps = apps
        self.url_prefix = url_prefix
        self.name = name
        self.auth = auth
        self.settings = settings
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, apps: AppSources = None, url_prefix: str | None = None,
                 auth: AuthSpec = None, **settings: Any) -> ServerCore:
        """Build the core from config and register the blueprints; return the core."""
        refuse_unsuitable_worker()
        _ensure_gevent()
        overrides = {**self.settings, **settings}
        resolved = with_cookie_secret(app, build_settings(overrides=overrides, config=app.config))
        mount = url_prefix if url_prefix is not None else self.url_prefix
        prefix = normalize_prefix("/".join(p.strip("/") for p in (mount, resolved.prefix) if p.strip("/")))
        # relative app paths resolve against the host app's folder, as its templates do
        core = ServerCore(resolved, apps if apps is not None else self.apps,
                          auth=auth if auth is not None else self.auth, root_path=app.root_path, prefix=prefix,
                          broadcast_channel=channel_for(resolved))
        register_core(core)
        install_auth(app, core, prefix)
        options = app.config.setdefault("SOCK_SERVER_OPTIONS", {})
        options.setdefault("subprotocols", ["bokeh"])
        options.setdefault("receive_bytes", RECEIVE_BYTES)
        options.setdefault("max_message_size", resolved.websocket_max_message_size)
        # WSHandler reads each websocket itself: simple-websocket must not start a reader
        options.update(thread_class=NoReaderThread, event_class=NoEvent)
        register_routes(app, core, prefix, self.name)
        if resolved.use_xheaders and not isinstance(app.wsgi_app, ProxyFix):
            # as Tornado's xheaders: the client address and scheme the proxy saw
            # Flask's documented way to add WSGI middleware; its types declare wsgi_app a method
            app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
        app.extensions.setdefault("bokeh_flask", {})[self.name] = core
        _configure_logging(resolved.log_level)
        return core

    @staticmethod
    def core(app: Flask, name: str = "bokeh") -> ServerCore:
        """The ServerCore registered on ``app`` under ``name``."""
        core: ServerCore = app.extensions["bokeh_flask"][name]
        return core


class _RedactTokens(logging.Filter):
    """Keep session tokens and signed ids out of request logs (werkzeug logs full URLs)."""

    _SECRET_ARGS = re.compile(r"((?:bokeh-token|bokeh-session-id)=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(self._SECRET_ARGS.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self._SECRET_ARGS.sub(r"\1<redacted>", record.msg)
        return True


#: Our lines' format where nothing else configured logging (gunicorn -c, flask run).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _configure_logging(level: str) -> None:
    """Our loggers' level, and a handler of their own only where no handler would show
    their lines (as Flask does for ``app.logger``): the root logger, werkzeug's and the host
    app's stay as the host configured them. Tokens are kept out of werkzeug's request lines."""
    numeric = logging.DEBUG if level.lower() == "trace" else getattr(logging, level.upper())
    ours = logging.getLogger("bokeh_flask")
    ours.setLevel(numeric)
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, _RedactTokens) for f in werkzeug_log.filters):
        werkzeug_log.addFilter(_RedactTokens())
    if not ours.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        ours.addHandler(handler)


def create_app() -> Flask:
    """The standalone server: apps from ``BOKEH_APPS`` (else the examples), settings from
    ``BOKEH_*`` variables and the CLI's ``BOKEH_FLASK_SETTINGS``."""
    flask_app = Flask(__name__, static_folder=None)
    # the whole app is ours: routing errors answer in plain text like our views
    flask_app.register_error_handler(HTTPException, http_exception_response)
    overrides = json.loads(os.environ.get("BOKEH_FLASK_SETTINGS", "{}"))
    BokehServer(flask_app, **overrides)
    return flask_app
