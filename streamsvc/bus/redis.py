"""Redis pub/sub bus: every instance publishes what it accepted and applies what others did.

One channel per prefix carries the hub's messages as they are (bytes, see `bus.codec`).

Losing Redis must never stop check-ins: `publish` fails fast and the caller drops the message
(the store has it); the reader reconnects with backoff and, once back, calls `on_reconnect` so
the hub catches up from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streamsvc.errors import StoreUnavailable

__all__ = ["RedisBus"]

logger = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[None]]
TIMEOUT = 2.0


class RedisBus:
    name = "redis"
    shared = True

    def __init__(self, url: str, *, prefix: str = "streamsvc") -> None:
        self.url = url
        self.channel = f"{prefix}:live"
        self._client: aioredis.Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._on_message: Handler | None = None
        self._on_reconnect: Callable[[], Awaitable[None]] | None = None
        self._failing: str | None = None

    def _redis(self) -> aioredis.Redis:
        return aioredis.from_url(self.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)

    async def start(
        self,
        on_message: Handler,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._on_message, self._on_reconnect = on_message, on_reconnect
        self._client = self._redis()
        ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(ready), name="redis-bus-reader")
        # wait for the first subscription, but start anyway if Redis is down right now
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(ready), TIMEOUT * 2)

    async def _read(self, ready: asyncio.Future[None]) -> None:
        delay, first = 0.2, True
        while True:
            pubsub = self._redis().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                was_failing = self._failing is not None or not first
                self._failing = None
                if not ready.done():
                    ready.set_result(None)
                if was_failing and self._on_reconnect is not None:
                    logger.info("redis is back; catching up from the store")
                    await self._on_reconnect()
                first, delay = False, 0.2
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None:
                        await pubsub.ping()
                        continue
                    if msg.get("type") != "message" or self._on_message is None:
                        continue
                    await self._on_message(msg["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._failing is None:
                    logger.warning("redis bus lost: %s", exc)
                self._failing = str(exc) or type(exc).__name__
                first = False
                if not ready.done():  # start anyway: check-ins must not wait for Redis
                    ready.set_result(None)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated upstream
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)

    async def publish(self, message: bytes) -> None:
        assert self._client is not None, "start() the bus first"
        try:
            await self._client.publish(self.channel, message)
        except (RedisError, OSError) as exc:
            self._failing = str(exc) or type(exc).__name__
            raise StoreUnavailable(f"redis: {self._failing}") from exc

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._client is not None:
            await self._client.aclose()

    async def ping(self) -> None:
        assert self._client is not None
        try:
            await asyncio.wait_for(self._client.ping(), TIMEOUT)
        except (TimeoutError, RedisError, OSError) as exc:
            self._failing = str(exc) or type(exc).__name__
            raise StoreUnavailable(f"redis: {self._failing}") from exc

    def health(self) -> str:
        return "ok" if self._failing is None else f"failing: {self._failing}"
