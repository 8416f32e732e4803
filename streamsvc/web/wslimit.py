"""A websocket response whose close for a frame over the limit (1009) reaches the client.

aiohttp answers a frame over `max_msg_size` with a close frame and then closes the socket at
once, while the client is usually still sending the rest of that frame. A socket closed with
unread bytes makes the kernel send a reset, and the reset can destroy the close frame still
in the client's receive buffer: the client then sees "connection reset" instead of code 1009.
Here the connection is half-closed after the close frame instead (a FIN follows it), the rest
of what the client sends is read and dropped, and the socket is closed once the client has
closed its side, or after `LINGER` seconds at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSCloseCode, web
from aiohttp.abc import AbstractStreamWriter

__all__ = ["LINGER", "FrameLimitedWebSocket"]

#: Seconds a connection closed for a frame over the limit waits for the client's side to close.
LINGER = 5.0
_POLL = 0.02


class FrameLimitedWebSocket(web.WebSocketResponse):
    """`web.WebSocketResponse` with a clean close for an oversized frame (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limit_transport: asyncio.Transport | None = None
        self._lingering = False

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter:
        writer = await super().prepare(request)
        self._limit_transport = request.transport
        return writer

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code != WSCloseCode.MESSAGE_TOO_BIG or self._lingering:
            return await super().close(code=code, message=message, drain=drain)
        self._lingering = True
        closed = await super().close(code=code, message=message, drain=drain)
        await self._linger()
        return closed

    def _close_transport(self) -> None:
        # aiohttp closes the socket right after the close frame; while lingering, only our
        # side is closed, so the bytes the client is still sending are read, not reset
        transport = self._limit_transport
        if not self._lingering or transport is None or not transport.can_write_eof():
            super()._close_transport()
            return
        if not transport.is_closing():
            transport.write_eof()
            if not transport.is_reading():
                transport.resume_reading()

    async def _linger(self) -> None:
        """Wait until the client closed its side (the transport then closes itself on EOF)."""
        transport = self._limit_transport
        if transport is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER
        while not transport.is_closing() and loop.time() < deadline:
            await asyncio.sleep(_POLL)
        transport.close()
