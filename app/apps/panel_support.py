"""What ``panel serve`` does for a Panel app and ``bokeh serve`` does not (core side).

Panel's models name their stylesheets by CDN address (``cdn.holoviz.org/panel/<version>/
dist/...``); ``panel serve`` rewrites them to its local copy, ``<prefix>/static/extensions/
panel/``, when a page is rendered, and ``bokeh serve`` does not, so a Panel tab under it
asks the CDN (and renders unstyled without internet). Panel's JavaScript already comes from
the extension route. When Panel is loaded in this process and BokehJS is served by us, a
new session's document gets Panel's own rewrite, with the same local address, whichever
request (page, autoload or websocket) built it. The page's own ``<link>`` and ``<script>``
tags name some Panel files by CDN address too (a Tabulator's theme stylesheet: Panel's
``bundled_files`` misses its local copy); ``panel serve`` rewrites those in its
``Resources``, which ``bokeh serve`` does not use, so the page bundle gets the same rewrite.

Panel's own ``Application`` also subscribes each document to the browser's
``document_ready`` event, which runs the ``pn.state.onload`` callbacks; ``bokeh serve``
builds Bokeh's ``Application``, so there they never run. A new session's document gets
a subscription that runs them here (see :func:`_run_onload_callbacks` for what it leaves
out). Nothing happens without Panel.
"""
from __future__ import annotations

import sys
from functools import partial
from typing import TYPE_CHECKING, Any

from bokeh.settings import settings as bokeh_settings

if TYPE_CHECKING:
    from bokeh.document import Document
    from bokeh.embed.bundle import Bundle
    from bokeh.events import DocumentReady
    from bokeh.resources import Resources


def prepare_document(document: Document, static_root: str) -> None:
    """Once a session's app code has built ``document``: its ``pn.state.onload`` callbacks
    run when the page is ready, and its stylesheets point at ``<static_root>extensions/panel/``."""
    if "panel.io.state" in sys.modules:
        document.on_event("document_ready", partial(_run_onload_callbacks, document))
    resources = sys.modules.get("panel.io.resources")
    if resources is None or bokeh_settings.resources(default="server") not in ("server", "server-dev"):
        return
    dist_url = f"{static_root}extensions/panel/"
    # read by Panel for models made later (callbacks, templates)
    document._template_variables["dist_url"] = dist_url
    for root in document.roots:
        resources.patch_model_css(root, dist_url=dist_url)


def serve_bundle_locally(bundle: Bundle, resources: Resources | None) -> Bundle:
    """Point a page bundle's Panel files at ``<root_url>static/extensions/panel/``: those
    named by CDN address when Panel ships them, and those named relative to the page (as
    Panel names its bundled JavaScript), which an autoload script embedded in another site
    would otherwise resolve against that site. Returns ``bundle``, changed in place."""
    panel_resources = sys.modules.get("panel.io.resources")
    if panel_resources is None or resources is None or resources.mode not in ("server", "server-dev"):
        return bundle
    cdn_dist: str = panel_resources.CDN_DIST
    local_dist: str = panel_resources.LOCAL_DIST
    dist_url = f"{resources.root_url}{local_dist}"

    def local(url: str) -> str:
        if url.startswith(cdn_dist) and (panel_resources.DIST_DIR / url[len(cdn_dist):].split("?")[0]).is_file():
            return dist_url + url[len(cdn_dist):]
        if url.startswith(local_dist):
            return dist_url + url[len(local_dist):]
        return url

    bundle.js_files = [type(url)(local(str(url))) for url in bundle.js_files]
    bundle.css_files = [type(url)(local(str(url))) for url in bundle.css_files]
    return bundle


def _run_onload_callbacks(document: Document, event: DocumentReady) -> None:
    """Run the ``pn.state.onload`` callbacks queued for ``document``, as Panel's
    ``state._on_load`` does (including ones they queue), minus marking the document
    loaded and connected: from then on Panel writes its changes straight to the
    session's Tornado websocket (``ServerSession._subscribed_connections``,
    ``ServerConnection._socket``), which our sessions do not have. Unmarked, Panel keeps
    handing its changes to the document, as under ``bokeh serve``; so ``pn.state.loaded``
    stays False and an ``onload`` registered after the page loaded waits, as there."""
    from panel.io.state import set_curdoc, state

    with set_curdoc(document):
        while document in state._onload:
            for callback, threaded in state._onload.pop(document):
                state.execute(callback, schedule="thread" if threaded else False)


def page_bundle(document: Document, resources: Resources | None) -> Bundle | None:
    """Panel's own page bundle for a document whose roots are Panel's, as ``panel serve``
    renders it; None for any other document (it gets Bokeh's cached bundle).

    Bokeh's bundle lacks what only Panel's ``Resources`` adds, from the session's Panel
    config: its design's JavaScript (``BootstrapTemplate`` fails with "bootstrap is not
    defined" without ``bootstrap.bundle.min.js``, under ``bokeh serve`` too), custom
    components' files, ES modules and raw CSS. It is built per page (it depends on the
    session's config, which ``panel serve`` reads per page too): tens of milliseconds,
    against Bokeh's bundle built once. Only ``server`` mode: Panel's bundle has no
    ``server-dev`` case, and CDN or inline pages load nothing from us anyway."""
    if resources is None or resources.mode != "server" or "panel.io.resources" not in sys.modules:
        return None
    if not any(type(root).__module__.startswith("panel.") for root in document.roots):
        return None
    from panel.io import resources as panel_resources
    from panel.io.state import set_curdoc

    # Any: typed in Panel 1.10, untyped in older releases (mypy runs against both)
    bundle_resources: Any = panel_resources.bundle_resources
    with set_curdoc(document):
        return serve_bundle_locally(bundle_resources(document.roots, resources), resources)
