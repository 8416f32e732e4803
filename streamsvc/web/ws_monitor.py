"""`/ws/monitor` and `GET /api/v1/sessions/{sid}/live`: the organizers' live counts.

After the hello, the monitor gets a snapshot and then deltas from the hub; it may ask for a
`resync` at any time. Each monitor has its own bounded queue and sender, so a slow one only
ever falls behind itself (and then skips to a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import WSMsgType, web

from streamsvc.errors import NotFound
from streamsvc.services.live import _SNAPSHOT, LiveHub, Monitor
from streamsvc.services.tokens import token_matches
from streamsvc.web import keys
from streamsvc.web.auth import require_admin
from streamsvc.web.jsonutil import json_response
from streamsvc.web.params import session_id_param
from streamsvc.wsframes import Outgoing

__all__ = ["live_http", "monitor_ws"]

CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
MAX_FRAME = 64 * 1024
#: A monitor whose socket holds more unsent bytes than this gets deltas through its queue.
FAST_PATH_BUFFER = 256 * 1024
#: How often a monitor that is behind looks whether its socket has room again.
DRAIN_POLL = 0.02


def _error(code: str, message: str) -> str:
    return orjson.dumps({"type": "error", "code": code, "message": message}).decode()


async def live_http(request: web.Request) -> web.Response:
    await require_admin(request)
    return json_response(await request.app[keys.live_key].snapshot(session_id_param(request)))


async def monitor_ws(request: web.Request) -> web.WebSocketResponse:
    # permessage-deflate when the client offers it; every data frame after the hello is then
    # built by `wsframes` (compressed once per delta for all monitors), never by aiohttp
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=30, compress=True)
    await ws.prepare(request)
    request.app[keys.sockets_key].add(ws)
    hub: LiveHub = request.app[keys.live_key]
    try:
        session_id = await _hello(request, ws)
        if session_id is None:
            return ws
        await _watch(request, hub, ws, session_id)
    finally:
        request.app[keys.sockets_key].discard(ws)
    return ws


async def _hello(request: web.Request, ws: web.WebSocketResponse) -> int | None:
    async for msg in ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None  # JSON in a binary frame is read too, as on /ws/checkin
        try:
            data = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            await ws.send_str(_error("bad_message", "not JSON"))
            continue
        if not isinstance(data, dict) or data.get("type") not in ("hello", "resync"):
            await ws.send_str(_error("bad_message", "expected a hello message"))
            continue
        token = data.get("token")
        if (
            data.get("type") != "hello"
            or not isinstance(token, str)
            or not token_matches(token, request.app[keys.admin_hash_key])
        ):
            await ws.send_str(_error("unauthorized", "send hello with the admin token"))
            await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
            return None
        session_id = data.get("session")
        if not isinstance(session_id, int) or isinstance(session_id, bool):
            await ws.send_str(_error("bad_message", "hello needs the session id (an integer)"))
            continue
        try:
            await request.app[keys.live_key].watched(session_id)
        except NotFound as exc:
            await ws.send_str(_error("not_found", exc.message))
            await ws.close(code=CLOSE_NOT_FOUND, message=b"unknown session")
            return None
        return session_id
    return None


async def _watch(
    request: web.Request, hub: LiveHub, ws: web.WebSocketResponse, session_id: int
) -> None:
    transport = request.transport
    negotiated = ws.compress
    window_bits = negotiated if type(negotiated) is int else 0

    def writable() -> bool:
        return transport is not None and not transport.is_closing() and not ws.closed

    def write_now(message: Outgoing) -> bool:
        """Write a delta's shared frame at once if the socket keeps up; False: queue it."""
        if not writable() or transport.get_write_buffer_size() > FAST_PATH_BUFFER:
            return False
        transport.write(message.frame(window_bits))
        return True

    async def send(data: bytes) -> None:
        """The queued path (snapshots, errors, deltas behind them): wait for room, then write.

        Frames go through `wsframes` here too: once a compressed frame of ours is on the
        connection, aiohttp's own compressor (which carries context over) must not be used.
        """
        frame = Outgoing(data).frame(window_bits)
        while writable() and transport.get_write_buffer_size() > FAST_PATH_BUFFER:
            await asyncio.sleep(DRAIN_POLL)
        if not writable():
            raise ConnectionResetError("the monitor went away")
        transport.write(frame)

    monitor = Monitor(write_now)
    monitor.sending = True  # until the snapshot is out, deltas queue behind it
    _seq, first = await hub.subscribe(session_id, monitor)

    async def sender() -> None:
        await send(first)
        monitor.sending = False
        while True:
            data = await monitor.queue.get()
            monitor.sending = True
            if data is _SNAPSHOT or data == _SNAPSHOT:
                monitor.snapshot_pending = False
                entry = hub.entry(session_id)
                if entry is None:
                    return
                data = hub.snapshot_message(entry)
            await send(data)
            monitor.sending = False

    task = asyncio.create_task(sender())
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                data = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                monitor.offer(_error("bad_message", "not JSON").encode())
                continue
            if isinstance(data, dict) and data.get("type") == "resync":
                monitor.request_snapshot()
            else:
                monitor.offer(_error("bad_message", "only resync is understood here").encode())
            if task.done():
                break
    finally:
        hub.unsubscribe(session_id, monitor)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
