"""Reads that many callers want at once and that may be a few seconds old.

When a thousand devices connect in the same minute, each would otherwise repeat the same read
(a session with its `expected` count, a session's audience). `Recent` keeps each key's answer
for `max_age` seconds, and callers arriving while it is being read wait for that one read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Recent"]

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    def __init__(
        self, read: Callable[[K], Awaitable[V]], *, max_age: float, max_keys: int = 10_000
    ) -> None:
        self._read = read
        self.max_age = max_age
        self.max_keys = max_keys
        self._held: dict[K, tuple[float, asyncio.Future[V]]] = {}

    async def get(self, key: K) -> V:
        now = time.monotonic()
        held = self._held.get(key)
        if held is not None and now - held[0] < self.max_age:
            future = held[1]
            if not future.done() or future.exception() is None:
                return await asyncio.shield(future)
        if len(self._held) >= self.max_keys:
            self._held.clear()
        future = asyncio.ensure_future(self._read(key))
        self._held[key] = (now, future)
        try:
            return await asyncio.shield(future)
        except BaseException:
            if self._held.get(key, (0.0, None))[1] is future:
                del self._held[key]  # a failed read is not kept
            raise

    def forget(self, key: K) -> None:
        """Drop what is held for `key`, so that the next caller reads it afresh."""
        self._held.pop(key, None)
