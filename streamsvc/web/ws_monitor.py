"""`/ws/monitor` and `GET /api/v1/sessions/{sid}/live`: the organizers' live counts.

After the hello, the monitor gets a snapshot and then deltas through the fan-out
(`web.fanout`); it may ask for a `resync` at any time. Each monitor has its own bounded queue
and sender, so a slow one only ever falls behind itself (and then skips to a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import WSMsgType, web

from streamsvc.errors import NotFound
from streamsvc.services.tokens import token_matches
from streamsvc.web import keys
from streamsvc.web.auth import require_admin
from streamsvc.web.fanout import Monitor, SocketWriter
from streamsvc.web.jsonutil import json_response
from streamsvc.web.params import session_id_param
from streamsvc.web.wslimit import FrameLimitedWebSocket

__all__ = ["live_http", "monitor_ws"]

CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
MAX_FRAME = 64 * 1024


def _error(code: str, message: str) -> str:
    return orjson.dumps({"type": "error", "code": code, "message": message}).decode()


async def live_http(request: web.Request) -> web.Response:
    await require_admin(request)
    return json_response(await request.app[keys.live_key].snapshot(session_id_param(request)))


async def monitor_ws(request: web.Request) -> web.WebSocketResponse:
    # permessage-deflate when the client offers it; every data frame after the hello is then
    # built by `wsframes` (compressed once per delta for all monitors), never by aiohttp
    ws = FrameLimitedWebSocket(max_msg_size=MAX_FRAME, heartbeat=30, compress=True)
    await ws.prepare(request)
    request.app[keys.sockets_key].add(ws)
    try:
        session_id = await _hello(request, ws)
        if session_id is None:
            return ws
        await _watch(request, ws, session_id)
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
            await request.app[keys.live_key].watch(session_id)
        except NotFound as exc:
            await ws.send_str(_error("not_found", exc.message))
            await ws.close(code=CLOSE_NOT_FOUND, message=b"unknown session")
            return None
        return session_id
    return None


async def _watch(request: web.Request, ws: web.WebSocketResponse, session_id: int) -> None:
    fanout = request.app[keys.fanout_key]
    writer = SocketWriter(ws, request.transport)
    monitor = Monitor(writer.write_now)
    first = await fanout.subscribe(session_id, monitor)
    task = asyncio.create_task(monitor.run(first, writer.send, lambda: fanout.snapshot(session_id)))
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
        fanout.unsubscribe(session_id, monitor)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
