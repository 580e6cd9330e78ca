"""Panel apps' own stylesheets from this server, as ``panel serve`` serves them (core side).

Panel's models name their stylesheets by CDN address (``cdn.holoviz.org/panel/<version>/
dist/...``); ``panel serve`` rewrites them to its local copy, ``<prefix>/static/extensions/
panel/``, when a page is rendered, and ``bokeh serve`` does not, so a Panel tab under it
asks the CDN (and renders unstyled without internet). Panel's JavaScript already comes from
the extension route. When Panel is loaded in this process and BokehJS is served by us, a
new session's document gets Panel's own rewrite, with the same local address, whichever
request (page, autoload or websocket) built it. Nothing happens without Panel.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from bokeh.settings import settings as bokeh_settings

if TYPE_CHECKING:
    from bokeh.document import Document


def serve_assets_locally(document: Document, static_root: str) -> None:
    """Point a Panel document's stylesheets at ``<static_root>extensions/panel/``."""
    resources = sys.modules.get("panel.io.resources")
    if resources is None or bokeh_settings.resources(default="server") not in ("server", "server-dev"):
        return
    dist_url = f"{static_root}extensions/panel/"
    # read by Panel for models made later (callbacks, templates)
    document._template_variables["dist_url"] = dist_url
    for root in document.roots:
        resources.patch_model_css(root, dist_url=dist_url)
