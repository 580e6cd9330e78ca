"""The route table: which URL goes to which view, readable top to bottom.

Per app key ``K`` under the prefix ``P`` (Bokeh's ``bokeh.server.urls``):

====================================  =====================  ==========================
``P/K`` and ``P/K/``                  DocHandler             GET
``P/K/ws``                            WSHandler              websocket (Flask-Sock)
``P/K/metadata``                      MetadataHandler        GET
``P/K/autoload.js`` (Bokeh 3)         AutoloadJsHandler      GET, OPTIONS
``P/K/embed.json`` (Bokeh 4)          EmbedJsonHandler       GET, OPTIONS
``P/K/static/<file>``                 StaticHandler          GET, HEAD (app's static/, else BokehJS)
``P/``  and ``P``                     RootHandler            GET (unless an app is at ``/`` or the index is off)
``P/static/extensions/<pkg>/<file>``  StaticHandler          GET, HEAD (extension bundles)
``P/static/<file>``                   StaticHandler          GET, HEAD (BokehJS)
``/favicon.ico``                      IcoHandler             GET (never prefixed)
``P/login``, ``P/logout`` (provider)  login/logout views     as the provider's handlers
``P/_dev/boot`` (``--dev`` only)      DevBootHandler         GET
``P/healthz``                         HealthzHandler         GET, HEAD (no login)
``P/readyz``                          ReadyzHandler          GET, HEAD (no login)
``P/metrics`` (``--metrics`` only)    MetricsHandler         GET (no login; bearer token)
====================================  =====================  ==========================

Each Bokeh gets one of autoload.js and embed.json (its BokehJS asks for only that one), as
under ``bokeh serve``; both live in the ``<name>_autoload`` blueprint. No app key may be one
of the probe paths (``/healthz``, ``/readyz``, ``/metrics`` when on).

Each handler gets its own blueprint (``<name>_doc``, ``<name>_ws``, ...), so a host app can
see and order them like its own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bokeh.util.paths import server_path
from flask import Blueprint, Flask
from flask.views import View
from flask_sock import Sock
from werkzeug.exceptions import HTTPException

from ..app.apps import bokeh_compat
from ..app.apps.static_files import bokehjs_root
from ..app.config.settings import SettingsError
from ..app.process import dev_reload
from ..app.sessions.server import ServerCore
from .auth.login_handlers import auth_routes
from .autoload_js_handler import AutoloadJsHandler
from .dev_handler import DevBootHandler
from .doc_handler import DocHandler
from .embed_json_handler import EmbedJsonHandler
from .health_handlers import HealthzHandler, ReadyzHandler
from .metadata_handler import MetadataHandler
from .metrics_handler import MetricsHandler
from .root_handler import RootHandler
from .static_handler import IcoHandler, StaticHandler
from .views import http_exception_response
from .websocket.ws_handler import WSHandler

_BOKEH_ICO = server_path() / "views" / "bokeh.ico"


def register_routes(app: Flask, core: ServerCore, prefix: str, name: str) -> None:
    """Add every route of ``core`` to ``app`` under ``prefix`` (already normalised)."""
    static_rule = prefix + "/static/<path:filename>"
    for existing in app.url_map.iter_rules():
        if existing.rule == static_rule:
            raise SettingsError(
                f"the Flask app already serves {prefix}/static (endpoint {existing.endpoint!r}), "
                "where BokehJS must be served: mount bokeh-flask with url_prefix=..., or create "
                "the Flask app with static_url_path='/assets' (or static_folder=None)"
            )
    probes: dict[str, type[View]] = {"/healthz": HealthzHandler, "/readyz": ReadyzHandler}
    if core.settings.metrics:
        probes["/metrics"] = MetricsHandler
    for key in core.applications:
        if key in probes:
            raise SettingsError(f"app {key} would hide the server's {key} route (health checks"
                                f"{', metrics' if core.settings.metrics else ''}): serve the app under another name")
    bps = {part: Blueprint(f"{name}_{part}", __name__) for part in
           ("doc", "ws", "metadata", "autoload", "static", "root", "auth", "health")}
    sock = Sock()

    def rule(bp: str, path: str, view: type[View], endpoint: str, methods: list[str], **options: Any) -> None:
        # exact paths as Bokeh's anchored patterns: no slash merging (/app//), no automatic OPTIONS
        bps[bp].add_url_rule(path, view_func=view.as_view(endpoint, core=core, prefix=prefix, **options),
                             methods=methods, merge_slashes=False, provide_automatic_options=False)

    for index, key in enumerate(core.applications):
        base = prefix + ("" if key == "/" else key)
        context = core.applications[key]
        for path in {base or "/", base + "/"}:
            rule("doc", path, DocHandler, f"doc{index}{'_slash' if path.endswith('/') else ''}",
                 ["GET"], app_key=key)
        rule("metadata", base + "/metadata", MetadataHandler, f"metadata{index}", ["GET"], app_key=key)
        if bokeh_compat.EMBED_JSON:
            rule("autoload", base + "/embed.json", EmbedJsonHandler, f"embed{index}",
                 ["GET", "OPTIONS"], app_key=key)
        else:
            rule("autoload", base + "/autoload.js", AutoloadJsHandler, f"autoload{index}",
                 ["GET", "OPTIONS"], app_key=key)
        app_static = context.application.static_path
        if key != "/" or app_static:
            rule("static", base + "/static/<path:filename>", StaticHandler, f"app_static{index}",
                 ["GET", "HEAD"], root=Path(app_static) if app_static else bokehjs_root())
        sock.route(base + "/ws", bp=bps["ws"], endpoint=f"ws{index}", defaults={"app_key": key},
                   merge_slashes=False)(
            lambda ws, app_key: WSHandler.serve(core, ws, app_key))

    if not core.settings.disable_index and "/" not in core.applications:
        for path in {prefix or "/", prefix + "/"}:
            rule("root", path, RootHandler, f"root{'_slash' if path.endswith('/') else ''}", ["GET"])
    if core.settings.dev:
        rule("root", prefix + dev_reload.BOOT_PATH, DevBootHandler, "dev_boot", ["GET"])
    rule("static", prefix + "/static/extensions/<path:filename>", StaticHandler, "extensions",
         ["GET", "HEAD"], root=None)
    rule("static", prefix + "/static/<path:filename>", StaticHandler, "bokehjs", ["GET", "HEAD"],
         root=bokehjs_root())
    ico = core.settings.ico_path
    if not (ico and ico.lower() == "none"):
        rule("static", "/favicon.ico", IcoHandler, "favicon", ["GET"], ico_path=ico or _BOKEH_ICO)
    for path, probe in probes.items():
        rule("health", prefix + path, probe, path.strip("/"), list(probe.methods or ["GET"]))
    for path, endpoint, view, methods in auth_routes(core, prefix):
        bps["auth"].add_url_rule(path, endpoint, view_func=view, methods=methods,
                                 merge_slashes=False, provide_automatic_options=False)

    bps["ws"].before_request(lambda: WSHandler.prepare_upgrade(core))
    for bp in bps.values():
        bp.register_error_handler(HTTPException, http_exception_response)
        app.register_blueprint(bp)
