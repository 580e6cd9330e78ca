"""Put a Bokeh protocol message's frames on the wire.

Which frames carry a message depends on the Bokeh release
(:func:`app.apps.bokeh_compat.message_frames`); :func:`wire_chunks` encodes them as a server
sends them (RFC 6455 5.2: FIN set, unmasked) without copying large payloads: a 1M-point
column leaves as the array's own memory. No I/O here.
"""
from __future__ import annotations

import struct
from typing import Union

from ..apps.bokeh_compat import Frame

__all__ = ["Chunk", "Frame", "frame_header", "wire_chunks"]

#: What a socket write takes: small frames packed together, large payloads as they are.
Chunk = Union[bytes, bytearray, memoryview]

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
_FIN = 0x80
#: Payloads from this size on are written from their own memory rather than copied next
#: to their frame header; smaller frames are packed into one chunk (one iovec, one copy).
COALESCE_BYTES = 16384


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
