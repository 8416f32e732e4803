"""A websocket response whose close for a frame over the limit (1009) reaches the client.

aiohttp answers a frame over `max_msg_size` with a close frame and then closes the socket at
once, while the client is usually still sending the rest of that frame. A socket closed with
unread bytes makes the kernel send a reset, and the reset can destroy the close frame still
in the client's receive buffer: the client then sees "connection reset" instead of code 1009.
Here the connection is half-closed after the close frame instead (a FIN follows it), the rest
of what the client sends is read and dropped, and the socket is closed once the client has
closed its side, or after `LINGER` seconds at most.

A revoked token's close (4401, `services.revocations`) comes from another task while the
handler is reading. aiohttp then closes the connection right after the close frame, without
waiting for the client's close frame: a coordinator still sending check-ins got a reset, and
aiohttp's client, whose reply failed, reported 1006. Here the connection stays open until the
client's close frame arrives (what is read meanwhile is dropped), `LINGER` seconds at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_websocket import WebSocketError
from aiohttp.streams import EofStream

from streamsvc.services.revocations import CLOSE_UNAUTHORIZED

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
        self._awaiting_reply = False

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter:
        writer = await super().prepare(request)
        self._limit_transport = request.transport
        return writer

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        # `_waiting`: aiohttp's own flag for a receive() running in another task
        if code == CLOSE_UNAUTHORIZED and self._waiting and not self.closed:
            return await self._close_awaiting_reply(code, message, drain)
        if code != WSCloseCode.MESSAGE_TOO_BIG or self._lingering:
            return await super().close(code=code, message=message, drain=drain)
        self._lingering = True
        closed = await super().close(code=code, message=message, drain=drain)
        await self._linger()
        return closed

    async def _close_awaiting_reply(self, code: int, message: bytes, drain: bool) -> bool:
        self._awaiting_reply = True
        try:
            closed = await super().close(code=code, message=message, drain=drain)
        finally:
            self._awaiting_reply = False
        reader = self._reader
        if reader is not None:
            try:
                async with asyncio.timeout(LINGER):
                    while (await reader.read()).type is not WSMsgType.CLOSE:
                        pass
            except (TimeoutError, EofStream, WebSocketError, OSError):
                pass  # gone, or silent: closed below all the same
        super()._close_transport()
        return closed

    def _close_transport(self) -> None:
        if self._awaiting_reply:  # closed once the client's close frame is read
            return
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
