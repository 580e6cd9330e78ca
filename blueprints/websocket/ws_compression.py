"""permessage-deflate (RFC 7692) with ``bokeh serve``'s ``--websocket-compression-level``
and ``--websocket-compression-mem-level``.

simple-websocket answers a client's permessage-deflate offer with wsproto's default
``PerMessageDeflate``: zlib's default level and memory level, and inflation without a
bound. With compression off, :meth:`WSHandler.prepare_upgrade` hides the offer, so nothing
is negotiated. With it on, the handshake negotiates as usual and :func:`tuned_connection`
hands the handler a wsproto connection whose extension is a :class:`TunedDeflate`: the
negotiated parameters, the configured zlib settings, and inflation bounded by the largest
message accepted (as Tornado bounds it), since a 64 KiB read of a crafted frame would
otherwise inflate to 64 MiB at once. Messages then go out through wsproto
(:func:`deflated_chunks`) rather than :func:`app.sessions.frames.wire_chunks`.
"""
from __future__ import annotations

import zlib

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

from ...app.sessions.frames import Frame


class TunedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, compressing with a given zlib level and memory level
    and refusing (1009) a frame that inflates past ``max_message_size``."""

    def __init__(self, negotiated: PerMessageDeflate, level: int, mem_level: int,
                 max_message_size: int | None) -> None:
        super().__init__(
            client_no_context_takeover=negotiated.client_no_context_takeover,
            client_max_window_bits=negotiated.client_max_window_bits,
            server_no_context_takeover=negotiated.server_no_context_takeover,
            server_max_window_bits=negotiated.server_max_window_bits,
        )
        self._enabled = negotiated.enabled()
        self.level = level
        self.mem_level = mem_level
        self.max_message_size = max_message_size

    def frame_outbound(self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits,
                       data: bytes, fin: bool) -> tuple[RsvBits, bytes]:
        # wsproto makes its compressor lazily, with zlib's defaults: make it first, ours
        if self._compressor is None and opcode in (Opcode.TEXT, Opcode.BINARY):
            self._compressor = zlib.compressobj(self.level, zlib.DEFLATED,
                                                -self.server_max_window_bits, self.mem_level)
        return super().frame_outbound(proto, opcode, rsv, data, fin)

    def frame_inbound_payload_data(self, proto: FrameDecoder | FrameProtocol,
                                   data: bytes) -> bytes | CloseReason:
        if not (self._inbound_compressed and self._inbound_is_compressible and self.max_message_size):
            return super().frame_inbound_payload_data(proto, data)
        assert self._decompressor is not None
        try:
            inflated = self._decompressor.decompress(bytes(data), self.max_message_size + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if self._decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG  # this piece alone inflates past the limit
        return inflated


def tuned_connection(connection: Connection, level: int, mem_level: int,
                     max_message_size: int | None) -> Connection | None:
    """A fresh server connection equal to ``connection`` (just past its handshake, no
    frame sent or received) but for a :class:`TunedDeflate` in place of the
    permessage-deflate it negotiated; None when the client offered none."""
    negotiated = next((e for e in connection._proto.extensions if isinstance(e, PerMessageDeflate)), None)
    if negotiated is None:
        return None
    return Connection(ConnectionType.SERVER, [TunedDeflate(negotiated, level, mem_level, max_message_size)])


def deflated_chunks(protocol: Connection, frames: list[Frame]) -> list[bytes]:
    """One message's frames, compressed and framed by ``protocol``'s extension. Write
    them in the order they are made: each one's compression continues the previous one's."""
    # wsproto's send takes a memoryview as it takes bytes (it copies the payload to frame it);
    # BytesMessage's annotation names only bytes and bytearray
    return [protocol.send(TextMessage(data=frame) if isinstance(frame, str)
                          else BytesMessage(data=frame))  # type: ignore[arg-type]
            for frame in frames]
