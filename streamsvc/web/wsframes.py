"""Websocket frames built once and written to many sockets (RFC 6455, RFC 7692).

A live delta goes to every monitor of a session. aiohttp would frame (and compress) it once
per monitor; here it is framed once per encoding and the same bytes go to every socket. With
permessage-deflate each message is compressed on its own (no context carried over), which
every client accepts whatever it negotiated, and a delta of 80 kB of JSON becomes ~6 kB:
less to copy into 1,000 sockets, and less for an organizer's phone to download.
"""

from __future__ import annotations

import zlib

__all__ = ["Outgoing", "deflate_frame", "text_frame"]

_DEFLATE_TAIL = b"\x00\x00\xff\xff"


def _header(first_byte: int, length: int) -> bytes:
    if length < 126:
        return bytes((first_byte, length))
    if length < 1 << 16:
        return bytes((first_byte, 126)) + length.to_bytes(2, "big")
    return bytes((first_byte, 127)) + length.to_bytes(8, "big")


def text_frame(payload: bytes) -> bytes:
    """`payload` as one final, unmasked, uncompressed text frame (what a server sends)."""
    return _header(0x81, len(payload)) + payload


def deflate_frame(payload: bytes, window_bits: int) -> bytes:
    """`payload` as one final text frame compressed with permessage-deflate (RSV1 set), with
    a fresh compressor so that it does not depend on what went before on the connection."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -window_bits)
    body = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if body.endswith(_DEFLATE_TAIL):
        body = body[: -len(_DEFLATE_TAIL)]
    return _header(0xC1, len(body)) + body


class Outgoing:
    """One message and its frames, each encoding built the first time a socket needs it."""

    __slots__ = ("_frames", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._frames: dict[int, bytes] = {}

    def frame(self, window_bits: int) -> bytes:
        """The frame for a connection that negotiated deflate with this window (9 to 15), or
        an uncompressed one for 0 (no compression, or a window zlib cannot produce)."""
        frame = self._frames.get(window_bits)
        if frame is None:
            if 9 <= window_bits <= 15:
                frame = deflate_frame(self.data, window_bits)
            else:
                frame = text_frame(self.data)
            self._frames[window_bits] = frame
        return frame
