"""Which Bokeh the tests run against, read from Bokeh itself (not from bokeh-flask's own
detection, which is what the tests check): Bokeh 4 sends websocket messages as one JSON
envelope plus buffers, and its embeds fetch ``<app>/embed.json`` instead of ``autoload.js``."""
from __future__ import annotations

import json
from importlib import import_module
from typing import Any

import bokeh
import pytest

#: Bokeh 4 or later (the 4.0 pre-releases).
BOKEH4 = int(bokeh.__version__.split(".", 1)[0]) >= 4
#: What a ``server_document()`` embed fetches from the Bokeh server before the websocket.
EMBED_ROUTE = "embed.json" if BOKEH4 else "autoload.js"

#: For tests of Bokeh 3's framing (header, metadata and content frames, ``{"id"}`` buffer
#: headers) or of ``autoload.js``: Bokeh 4 has neither, and its own tests stand beside them.
bokeh3_only = pytest.mark.skipif(BOKEH4, reason="Bokeh 3's wire format or autoload.js; Bokeh 4 has neither")
#: For tests of Bokeh 4's envelope format or ``embed.json``.
bokeh4_only = pytest.mark.skipif(not BOKEH4, reason="Bokeh 4's envelope format or embed.json")


def client_message(msgtype: str, *args: Any) -> Any:
    """A Bokeh message built by the installed Bokeh (``PULL-DOC-REQ``, ``PATCH-DOC`` ...)."""
    if BOKEH4:
        messages = import_module("bokeh.protocol.messages")
        return getattr(messages, msgtype.lower().replace("-", "_"))(*args)
    return import_module("bokeh.protocol").Protocol().create(msgtype, *args)


def text_frames(msgtype: str, msgid: str = "1", content: Any = None, **header: Any) -> list[str]:
    """A message without buffers as the installed Bokeh frames it, written by hand."""
    head = {"msgid": msgid, "msgtype": msgtype, **header}
    body = {} if content is None else content
    if BOKEH4:
        return [json.dumps({"header": head, "content": body, "buffers": []})]
    return [json.dumps(head), "{}", json.dumps(body)]


def embed_path(app: str, query: str = "") -> str:
    """``<app>/autoload.js`` (with the element id it requires) or Bokeh 4's
    ``<app>/embed.json``, each with ``query`` added."""
    if BOKEH4:
        return f"{app}/embed.json" + (f"?{query}" if query else "")
    return f"{app}/autoload.js?bokeh-autoload-element=e" + (f"&{query}" if query else "")
