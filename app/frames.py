"""Turn a Bokeh protocol message into the websocket frames that carry it (contract 5.1).

Text frames for header, metadata and content; then, per buffer, a text frame with its
``{"id": ...}`` header and a binary frame with its bytes. Serialised once, so the same
frames can go to every connection of a session.
"""
from __future__ import annotations

import json
from typing import Any, Union

Frame = Union[str, bytes]


def message_frames(message: Any) -> list[Frame]:
    frames: list[Frame] = [message.header_json, message.metadata_json, message.content_json]
    for buffer in message.buffers:
        frames.append(json.dumps(buffer.ref))
        frames.append(buffer.to_bytes())
    return frames
