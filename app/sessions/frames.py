"""Turn a Bokeh protocol message into the websocket frames that carry it (``bokeh.protocol.message``'s wire format).

Text frames for header, metadata and content; then, per buffer, a text frame with its
``{"id": ...}`` header and a binary frame with its bytes. :func:`wire_chunks` encodes
frames as a server sends them (RFC 6455 5.2: FIN set, unmasked) without copying large
payloads: a 1M-point column leaves as the array's own memory. No I/O here.
"""
from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from bokeh.protocol.message import Message

Frame = Union[str, bytes, memoryview]
#: What a socket write takes: small frames packed together, large payloads as they are.
Chunk = Union[bytes, bytearray, memoryview]

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
_FIN = 0x80
#: Payloads from this size on are written from their own memory rather than copied next
#: to their frame header; smaller frames are packed into one chunk (one iovec, one copy).
COALESCE_BYTES = 16384


def message_frames(message: Message[Any], *, views: bool = False) -> list[Frame]:
    """The message's frames. Buffers are ``bytes`` (what Bokeh's ``Receiver`` accepts
    back); with ``views`` they stay byte views of the serialised arrays, which saves a
    copy of every buffer when the frames are only written out."""
    frames: list[Frame] = [message.header_json, message.metadata_json, message.content_json]
    for buffer in message.buffers:
        frames.append(json.dumps(buffer.ref))
        frames.append(_byte_view(buffer.data) if views else buffer.to_bytes())
    return frames


def _byte_view(data: bytes | memoryview) -> bytes | memoryview:
    """``data`` as one-byte items, so its length is its size in bytes; copied only when
    it is not contiguous (a socket write needs one block of memory)."""
    if not isinstance(data, memoryview):
        return data
    return data.cast("B") if data.c_contiguous else data.tobytes()


def frame_header(opcode: int, length: int) -> bytes:
    """A final, unmasked frame's header: 2 bytes, or 4 / 10 with the extended length."""
    if length < 126:
        return bytes((_FIN | opcode, length))
    if length < 65536:
        return struct.pack("!BBH", _FIN | opcode, 126, length)
    return struct.pack("!BBQ", _FIN | opcode, 127, length)


def wire_chunks(frames: list[Frame]) -> list[Chunk]:
    """The bytes of one message's frames on the wire: text frames for ``str``, binary
    frames otherwise, each a whole message. Write the chunks in order, unbroken."""
    chunks: list[Chunk] = []
    packed = bytearray()
    for frame in frames:
        if isinstance(frame, str):
            payload: bytes | memoryview = frame.encode("utf-8")
            opcode = OPCODE_TEXT
        else:
            payload = frame
            opcode = OPCODE_BINARY
        packed += frame_header(opcode, len(payload))
        if len(payload) < COALESCE_BYTES:
            packed += payload
        else:
            chunks.append(packed)
            chunks.append(payload)
            packed = bytearray()
    if packed:
        chunks.append(packed)
    return chunks
