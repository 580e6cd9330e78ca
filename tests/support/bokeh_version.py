"""Which Bokeh the tests run against, read from Bokeh itself (not from bokeh-flask's own
detection, which is what the tests check): Bokeh 4 sends websocket messages as one JSON
envelope plus buffers, and its embeds fetch ``<app>/embed.json`` instead of ``autoload.js``."""
from __future__ import annotations

import bokeh

#: Bokeh 4 or later (the 4.0 pre-releases).
BOKEH4 = int(bokeh.__version__.split(".", 1)[0]) >= 4
#: What a ``server_document()`` embed fetches from the Bokeh server before the websocket.
EMBED_ROUTE = "embed.json" if BOKEH4 else "autoload.js"
