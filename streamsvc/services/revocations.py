"""Revocations: a reset site token or an ended sign-in stops at once on every instance.

Each request reads the token's row, so new requests are refused everywhere as soon as the
change is committed. What outlives that check is state an instance holds: websockets opened
with the token, and the site-token cache of `CheckinService`. `revoke(keys)` closes the local
sockets tracked under those keys (an `unauthorized` error, then close 4401), runs the
`on_revoked` hooks (the cache forgets the site), and publishes the keys on a control bus of
its own so every other instance does the same.

Keys name what was revoked: `site:<id>` (every token of the site) and `token:<hash>` (one
sign-in token, by its stored hash).

A message lost while Redis is away is not replayed. The site-token cache expires within
seconds on its own (`checkins.SITE_TTL`); a socket tracked with a `check` is checked again when
the control bus is back (`recheck`), and closed if its token no longer holds. A socket tracked
without one stays open until it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Protocol

import orjson

from streamsvc.errors import StoreUnavailable
from streamsvc.ports import Bus

__all__ = [
    "CLOSE_UNAUTHORIZED",
    "Revocable",
    "Revocations",
    "decode",
    "encode",
    "site_ids",
    "site_key",
    "token_key",
]

logger = logging.getLogger(__name__)

#: The websocket close code of the contract for an unauthorized token.
CLOSE_UNAUTHORIZED = 4401
#: Seconds a revocation is remembered, for a hello that was being answered meanwhile.
REMEMBER = 60.0


class Revocable(Protocol):
    """What a revocation needs of a websocket (aiohttp's `WebSocketResponse` is one)."""

    @property
    def closed(self) -> bool: ...

    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int, message: bytes) -> bool: ...


OnRevoked = Callable[[Sequence[str]], None]
#: Whether a socket's token still holds, read from the store (not from a cache).
Check = Callable[[], Awaitable[bool]]
#: Checks run at once after the control bus was away: a few, not one per socket together.
RECHECKS = 4


def site_key(site_id: int) -> str:
    return f"site:{site_id}"


def token_key(token_hash: str) -> str:
    return f"token:{token_hash}"


def site_ids(keys: Iterable[str]) -> list[int]:
    """The site ids among revoked keys (others are skipped, as is a malformed id)."""
    ids = []
    for key in keys:
        kind, _, rest = key.partition(":")
        if kind == "site" and rest.isdigit():
            ids.append(int(rest))
    return ids


def encode(origin: str, keys: Sequence[str], reason: str) -> bytes:
    """The control bus message: who sent it (to skip one's own) and what was revoked."""
    return orjson.dumps({"type": "revoked", "origin": origin, "keys": list(keys), "reason": reason})


def decode(data: bytes) -> tuple[str, list[str], str] | None:
    """(origin, keys, reason), or None for a message that is not a revocation."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "revoked":
        return None
    origin, keys, reason = msg.get("origin"), msg.get("keys"), msg.get("reason")
    if not isinstance(origin, str) or not isinstance(keys, list):
        return None
    if not all(isinstance(k, str) for k in keys):
        return None
    return origin, keys, reason if isinstance(reason, str) else "token revoked"


class Revocations:
    """Sockets by the keys that can revoke them, and the fan-out of revocations."""

    def __init__(self, bus: Bus, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.clock = clock
        self.origin = uuid.uuid4().hex
        #: Called with the revoked keys, here and on every instance the message reaches.
        self.on_revoked: list[OnRevoked] = []
        self._sockets: dict[str, weakref.WeakSet[Revocable]] = {}
        self._revoked_at: dict[str, float] = {}
        self._closing: dict[Revocable, asyncio.Task[None]] = {}
        self._checks: weakref.WeakKeyDictionary[Revocable, Check] = weakref.WeakKeyDictionary()
        self._rechecking: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bus.start(self._on_message, self._bus_back)

    async def stop(self) -> None:
        await self.bus.stop()
        tasks = list(self._closing.values())
        if self._rechecking is not None:
            tasks.append(self._rechecking)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def track(self, key: str, ws: Revocable, check: Check | None = None) -> None:
        """Close `ws` when `key` is revoked (held weakly; `untrack` it in the handler's finally).

        `check` says whether the socket's token still holds; it runs only after the control
        bus was away (`recheck`), when a revocation may have been missed.
        """
        self._sockets.setdefault(key, weakref.WeakSet()).add(ws)
        if check is not None:
            self._checks[ws] = check

    def untrack(self, key: str, ws: Revocable) -> None:
        self._checks.pop(ws, None)
        sockets = self._sockets.get(key)
        if sockets is None:
            return
        sockets.discard(ws)
        if not sockets:
            del self._sockets[key]

    async def settle(self, ws: Revocable) -> None:
        """Wait until a revocation has finished closing `ws`, if one is closing it.

        A handler calls it before it returns: aiohttp drops the connection when the handler
        returns, and a close still waiting for the client's reply would then reach the client
        as 1006 instead of 4401.
        """
        task = self._closing.get(ws)
        if task is not None:
            await asyncio.wait([task])

    async def recheck(self) -> None:
        """Check every tracked socket that has a `check` again, and close those whose token
        no longer holds: revocations sent while the control bus was away never arrived."""
        tracked = [(key, ws) for key, sockets in self._sockets.items() for ws in list(sockets)]
        checks = [(key, ws, check) for key, ws in tracked if (check := self._checks.get(ws))]
        if not checks:
            return
        logger.info("control bus back: checking %d sockets' tokens again", len(checks))
        running = asyncio.Semaphore(RECHECKS)
        payload = _unauthorized("this token was revoked")

        async def one(key: str, ws: Revocable, check: Check) -> None:
            async with running:
                if ws.closed:
                    return
                try:
                    holds = await check()
                except StoreUnavailable as exc:  # the next reconnect, or the device's, retries
                    logger.warning("rechecking a socket's token failed: %s", exc.message)
                    return
            if not holds:
                self.untrack(key, ws)
                self._start_close(ws, payload)

        await asyncio.gather(*(one(*entry) for entry in checks))

    async def _bus_back(self) -> None:
        # in a task of its own: the bus's reader goes on reading revocations meanwhile
        if self._rechecking is None or self._rechecking.done():
            self._rechecking = asyncio.create_task(
                self._recheck_logged(), name="revocation-recheck"
            )

    async def _recheck_logged(self) -> None:
        try:
            await self.recheck()
        except Exception:
            logger.exception("rechecking the tracked sockets failed")

    def tracked(self, key: str) -> int:
        """Open sockets tracked under `key` (for tests and metrics)."""
        return len(self._sockets.get(key, ()))

    def revoked_since(self, key: str, since: float) -> bool:
        """Whether `key` was revoked at or after `since` (a `clock()` reading).

        A hello that read a token before its reset and tracked its socket after the revocation
        arrived would miss it; the hello notes the time it asked and checks again.
        """
        at = self._revoked_at.get(key)
        return at is not None and at >= since

    async def revoke(self, keys: Sequence[str], reason: str = "this token was revoked") -> None:
        """Close what `keys` opened here, now, and tell every other instance to do the same.

        Call it after the change is committed, so that a socket that reconnects at once is
        refused. The closes run as tasks: a client slow to answer the close frame delays
        nobody. Redis unreachable is logged, not raised: the change itself is done.
        """
        keys = list(keys)
        if not keys:
            return
        self._apply(keys, reason)
        if not self.bus.shared:
            return
        try:
            await self.bus.publish(encode(self.origin, keys, reason))
        except StoreUnavailable as exc:
            logger.warning(
                "revocation of %d keys not sent to other instances: %s", len(keys), exc.message
            )

    async def _on_message(self, data: bytes) -> None:
        decoded = decode(data)
        if decoded is None:
            logger.warning("control bus: not a revocation, ignored (%d bytes)", len(data))
            return
        origin, keys, reason = decoded
        if origin != self.origin:  # our own came back: already applied
            self._apply(keys, reason)

    def _apply(self, keys: Sequence[str], reason: str) -> None:
        now = self.clock()
        self._forget_old(now)
        payload = _unauthorized(reason)
        for key in keys:
            self._revoked_at[key] = now
            sockets = self._sockets.pop(key, None)
            for ws in list(sockets or ()):
                self._start_close(ws, payload)
        for hook in self.on_revoked:
            try:
                hook(keys)
            except Exception:
                logger.exception("a revocation hook failed")

    def _start_close(self, ws: Revocable, payload: str) -> None:
        if ws in self._closing:
            return
        task = asyncio.create_task(_close(ws, payload), name="revocation-close")
        self._closing[ws] = task
        task.add_done_callback(partial(self._closed, ws))

    def _closed(self, ws: Revocable, _task: asyncio.Task[None]) -> None:
        self._closing.pop(ws, None)

    def _forget_old(self, now: float) -> None:
        if self._revoked_at:
            old = [k for k, at in self._revoked_at.items() if now - at > REMEMBER]
            for key in old:
                del self._revoked_at[key]


def _unauthorized(reason: str) -> str:
    return orjson.dumps({"type": "error", "code": "unauthorized", "message": reason}).decode()


async def _close(ws: Revocable, payload: str) -> None:
    if ws.closed:
        return
    try:
        await ws.send_str(payload)
        await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
    except (ConnectionError, RuntimeError) as exc:  # the peer went away meanwhile
        logger.debug("closing a revoked socket: %s", exc)
