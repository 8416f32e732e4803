"""`/ws/checkin`: a site's coordinator device sends events and gets one ack per frame.

Frames are read while earlier ones are still being committed (so one device's frames can
share a group commit), and acks go out strictly in frame order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from streamsvc.domain.checkin import MAX_BATCH
from streamsvc.domain.models import Site
from streamsvc.domain.timefmt import format_ts
from streamsvc.errors import StoreUnavailable, Unauthorized
from streamsvc.services.revocations import CLOSE_UNAUTHORIZED, site_key
from streamsvc.web import keys
from streamsvc.web.errors import error_response
from streamsvc.web.jsonutil import session_json, site_json
from streamsvc.web.wslimit import FrameLimitedWebSocket

__all__ = ["MAX_FRAME", "PIPELINE", "AckLine", "checkin_ws"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

MAX_FRAME = 1024 * 1024
EVENT_TYPES = frozenset(("checkin", "checkout", "guests", "void"))
PIPELINE = 32


class AckLine(Generic[T]):
    """One connection's frames waiting for their acks, in the order they came, at most
    `limit`: `put` waits while it is full (the device is then not read from, and TCP slows
    it down), `get` while it is empty. What an `asyncio.Queue` did here, in one deque and a
    future made only while someone waits: the Queue's four deques and its Event cost ~3 KB a
    connection, 30 MB on an instance holding 10,000 sites."""

    __slots__ = ("_items", "_limit", "_waiter")

    def __init__(self, limit: int) -> None:
        self._items: deque[T] = deque()
        self._limit = limit
        # the one side waiting (the reader on a full line, or the sender on an empty one)
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def put(self, item: T) -> None:
        while len(self._items) >= self._limit:
            await self._wait()
        self._items.append(item)
        self._wake()

    async def get(self) -> T:
        while not self._items:
            await self._wait()
        item = self._items.popleft()
        self._wake()
        return item


def _error(code: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "code": code, "message": message})


async def checkin_ws(request: web.Request) -> web.StreamResponse:
    wait = request.app[keys.admission_key].admit()
    if wait is not None:
        # before the upgrade: a refused device costs this instance one short HTTP answer
        refused = error_response(
            503, "busy", "too many devices are connecting to this server at once; try again"
        )
        refused.headers["Retry-After"] = str(wait)
        return refused
    ws = FrameLimitedWebSocket(max_msg_size=MAX_FRAME, compress=False, heartbeat=30)
    await ws.prepare(request)
    request.app[keys.sockets_key].add(ws)
    site: Site | None = None
    live = request.app[keys.live_key]
    revocations = request.app[keys.revocations_key]
    try:
        site = await _hello(request, ws)
        if site is None:
            return ws
        await live.site_connected(site, +1)
        # DEBUG: thousands of sites connect at a session's start and again after any restart
        logger.debug("site %s connected from %s", site.id, request.remote)
        await _serve(request, ws, site)
    finally:
        request.app[keys.sockets_key].discard(ws)
        if site is not None:
            revocations.untrack(site_key(site.id), ws)
            await live.site_connected(site, -1)
        await revocations.settle(ws)  # a token reset closing it: let the close finish
        if site is not None:
            logger.debug("site %s disconnected (close code %s)", site.id, ws.close_code)
    return ws


async def _hello(request: web.Request, ws: web.WebSocketResponse) -> Site | None:
    """Wait for a valid hello; answer welcome, or unauthorized and close 4401.

    The socket is tracked under its site before the welcome, so a token reset closes it
    (`Revocations`); the caller untracks it once the hello has succeeded.
    """
    revocations = request.app[keys.revocations_key]
    checkins = request.app[keys.checkins_key]
    async for msg in ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        try:
            data = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            await ws.send_str(_error("bad_message", "not JSON").decode())
            continue
        if not isinstance(data, dict) or data.get("type") not in ("hello", *EVENT_TYPES, "batch"):
            await ws.send_str(_error("bad_message", "expected a hello message").decode())
            continue
        tracked: str | None = None
        try:
            if data.get("type") != "hello":
                raise Unauthorized("send hello with the site token first")
            asked = revocations.clock()
            site = await checkins.site_for_token(data.get("token"))
            tracked = site_key(site.id)
            # the check holds no reference to the socket: it is a weak key's value
            revocations.track(tracked, ws, partial(checkins.token_holds, data["token"], site.id))
            session = await request.app[keys.sessions_key].session_for_welcome(site.session_id)
            if revocations.revoked_since(tracked, asked):
                # reset while this hello was answered, before the socket was tracked: the
                # cache has forgotten the site, so this reads the token's row again
                site = await checkins.site_for_token(data.get("token"))
        except Unauthorized as exc:
            if tracked is not None:
                revocations.untrack(tracked, ws)
            # a device with a wrong or reset link; never the token itself
            logger.info("coordinator refused from %s: %s", request.remote, exc.message)
            if not ws.closed:  # else the revocation has said so already
                await ws.send_str(_error("unauthorized", exc.message).decode())
                await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
            return None
        except StoreUnavailable as exc:
            # Close 1013 as a failed commit does, so the device retries after its backoff.
            # Left to the error middleware, its 503 went into the upgraded socket and the
            # device waited for a welcome until its own timeout (10-60 s, however soon the
            # database was back). DEBUG: every device retries while the database is down.
            logger.debug("hello from %s while the store is unavailable: %s", request.remote, exc)
            if tracked is not None:
                revocations.untrack(tracked, ws)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"store unavailable")
            return None
        if ws.closed:  # revoked before the welcome
            revocations.untrack(tracked, ws)
            return None
        await ws.send_str(
            orjson.dumps(
                {
                    "type": "welcome",
                    "session": session_json(session),
                    "site": site_json(site),
                    "server_time": format_ts(datetime.now(UTC)),
                }
            ).decode()
        )
        return site
    return None


async def _serve(request: web.Request, ws: web.WebSocketResponse, site: Site) -> None:
    service = request.app[keys.checkins_key]
    stats = service.stats
    clock = asyncio.get_running_loop().time
    # Each entry is when the frame came in, and its ack already encoded (an error) or the
    # results still being committed.
    acks: AckLine[tuple[float, bytes | asyncio.Future[list[dict[str, Any]]]] | None] = AckLine(
        PIPELINE
    )

    async def send_acks() -> None:
        observe = stats.ack_seconds.observe
        while (entry := await acks.get()) is not None:
            received, pending = entry
            if isinstance(pending, bytes):
                stats.bad_frames += 1
                payload = pending
            else:
                try:
                    payload = orjson.dumps({"type": "ack", "results": await pending})
                except Exception as exc:  # the store failed: no ack, the device resends
                    logger.warning("site %s: commit failed, closing: %s", site.id, exc)
                    await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=_close_reason(exc))
                    return
            if not ws.closed:
                observe(clock() - received)  # the write below only queues the bytes
                await ws.send_frame(payload, WSMsgType.TEXT)

    def handle(events: list[Any]) -> asyncio.Future[list[dict[str, Any]]]:
        return service.start_record(site, events)

    sender = asyncio.create_task(send_acks())
    try:
        async for msg in ws:
            if ws.closed:  # closed meanwhile (a token reset): a frame still buffered is dropped
                break
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                # JSON in a binary frame is read too: some client libraries send bytes so
                await acks.put((clock(), _dispatch(msg.data, handle)))
            elif msg.type == WSMsgType.ERROR:
                break
            if sender.done():
                break
    finally:
        if not sender.done():
            await acks.put(None)
            with contextlib.suppress(Exception):
                await sender
        else:
            with contextlib.suppress(Exception):
                sender.result()


def _close_reason(exc: Exception) -> bytes:
    """Why a commit failed, for the coordinator (a full disk says so); a close frame's reason
    holds at most 123 bytes."""
    text = exc.message if isinstance(exc, StoreUnavailable) else "store unavailable"
    return text.encode()[:123].decode(errors="ignore").encode()


def _dispatch(
    text: str | bytes, handle: Callable[[list[Any]], asyncio.Future[list[dict[str, Any]]]]
) -> bytes | asyncio.Future[list[dict[str, Any]]]:
    """What to ack for one frame: an error now, or the results once committed."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _error("bad_message", "not JSON")
    kind = data.get("type") if isinstance(data, dict) else None
    if kind in EVENT_TYPES:
        return handle([data])
    if kind == "batch":
        items = data.get("items")
        if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
            return _error("bad_message", f"a batch holds 1 to {MAX_BATCH} events")
        return handle(items)
    if kind == "hello":
        return _error("bad_message", "already said hello")
    return _error("bad_message", "unknown message type")
