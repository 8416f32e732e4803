"""In-process bus: delivers to every hub subscribed to the same `MemoryBus` object.

One instance alone needs no delivery at all (its hub applies its own events directly); sharing
one `MemoryBus` between two apps in a test process behaves like two instances on Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["MemoryBus"]

Handler = Callable[[bytes], Awaitable[None]]


class MemoryBus:
    name = "memory"

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    @property
    def shared(self) -> bool:
        """Whether any other hub listens (else publishing is pointless)."""
        return len(self._handlers) > 1

    async def start(
        self,
        on_message: Handler,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._handlers.append(on_message)

    async def publish(self, message: bytes) -> None:
        for handler in list(self._handlers):
            # delivered on the next loop turn, like a message coming back from a server
            asyncio.get_running_loop().call_soon(_spawn, handler, message)

    async def stop(self) -> None:
        self._handlers.clear()

    async def ping(self) -> None:
        return None

    def health(self) -> str:
        return "disabled"


_tasks: set[asyncio.Task[None]] = set()


def _spawn(handler: Handler, message: bytes) -> None:
    task = asyncio.ensure_future(handler(message))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
