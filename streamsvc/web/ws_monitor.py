"""`/ws/monitor` and `GET /api/v1/sessions/{sid}/live`: the organizers' live counts.

After the hello, the monitor gets a snapshot and then deltas through the fan-out
(`web.fanout`); it may ask for a `resync` at any time. Each monitor has its own bounded queue
and sender, so a slow one only ever falls behind itself (and then skips to a fresh snapshot).

Who may watch is the policy's (`AccessService`): a user's sign-in token or the admin token;
LIVE is restricted to the caller's scope, or to the subtree of the hello's `unit` inside it.
A session out of sight answers exactly as an unknown one. A user's socket is tracked by its
sign-in token, so a sign-out or a deactivation on any instance closes it (4401).

A dashboard at many sites asks for less (`LiveOptions`: the hello's `sites` and `depth`, or
the query's on `/live`) and reads the per-site table page by page from `live_sites_http`.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from streamsvc.domain.live import LiveOptions, SiteQuery
from streamsvc.domain.policy import Caller
from streamsvc.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)
from streamsvc.services.revocations import CLOSE_UNAUTHORIZED, token_key
from streamsvc.web import keys
from streamsvc.web.auth import client_address, principal
from streamsvc.web.fanout import Monitor, SocketWriter
from streamsvc.web.jsonutil import json_response
from streamsvc.web.params import session_id_param
from streamsvc.web.wslimit import FrameLimitedWebSocket

__all__ = ["live_http", "live_sites_http", "monitor_ws"]

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
MAX_FRAME = 64 * 1024


def _error(code: str, message: str) -> str:
    return orjson.dumps({"type": "error", "code": code, "message": message}).decode()


async def live_http(request: web.Request) -> web.Response:
    """LIVE over HTTP, restricted to the caller's scope or to `?unit=CODE` inside it, with
    `?sites=none` and `?depth=n` as a monitor's hello."""
    session_id = session_id_param(request)
    query = request.query
    options = LiveOptions.from_query(query)
    caller = await _viewer(request, session_id)
    live = request.app[keys.live_key]
    return _compressed(json_response(await live.snapshot(session_id, caller.scope.root, options)))


async def live_sites_http(request: web.Request) -> web.Response:
    """A page of the session's per-site table from the live state, in the caller's scope or
    `?unit=CODE`'s subtree inside it, filtered and ordered as the query says."""
    session_id = session_id_param(request)
    query = SiteQuery.parse(request.query)
    caller = await _viewer(request, session_id)
    live = request.app[keys.live_key]
    sites, total = await live.sites(session_id, caller.scope.root, query)
    return _compressed(json_response({"sites": sites, "total": total}))


def _compressed(response: web.Response) -> web.Response:
    """Gzipped for a client that accepts it (a dashboard on a phone reads these every few
    seconds; a page of 100 sites is ~17 kB, ~2 kB gzipped); aiohttp compresses a large body
    in a worker thread, off the loop."""
    response.enable_compression()
    return response


async def _viewer(request: web.Request, session_id: int) -> Caller:
    """The caller, a viewer at least, narrowed to `?unit=` and allowed to see the session."""
    unit = request.query.get("unit") or None
    who = await principal(request)
    caller = await request.app[keys.access_key].caller(who, client_address(request), unit=unit)
    caller.allow("viewer")
    await request.app[keys.access_key].session(caller, session_id)
    return caller


async def monitor_ws(request: web.Request) -> web.WebSocketResponse:
    # permessage-deflate when the client offers it; every data frame after the hello is then
    # built by `wsframes` (compressed once per delta for all monitors), never by aiohttp
    ws = FrameLimitedWebSocket(max_msg_size=MAX_FRAME, heartbeat=30, compress=True)
    await ws.prepare(request)
    request.app[keys.sockets_key].add(ws)
    revocations = request.app[keys.revocations_key]
    tracked: str | None = None
    try:
        hello = await _hello(request, ws)
        if hello is None:
            return ws
        session_id, caller, options, tracked = hello
        await _watch(request, ws, session_id, caller.scope.root, options)
    finally:
        request.app[keys.sockets_key].discard(ws)
        if tracked is not None:
            revocations.untrack(tracked, ws)
        await revocations.settle(ws)  # a sign-out closing it: let the close finish
    return ws


async def _hello(
    request: web.Request, ws: web.WebSocketResponse
) -> tuple[int, Caller, LiveOptions, str | None] | None:
    """Wait for a valid hello: (session id, caller, the options asked for, the revocation key
    the socket is tracked under), or None once the socket is closed with the error's code."""
    app = request.app
    revocations = app[keys.revocations_key]
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
        session_id = data.get("session")
        unit = data.get("unit")
        token = data.get("token")
        tracked: str | None = None
        try:
            if data.get("type") != "hello" or not isinstance(token, str):
                raise Unauthorized("send hello with a sign-in token or the admin token")
            asked = revocations.clock()
            who = await app[keys.accounts_key].principal(token)
            if who.site_id is not None:
                raise Unauthorized("a site token is for check-ins; sign in to watch")
            if not isinstance(session_id, int) or isinstance(session_id, bool):
                await ws.send_str(_error("bad_message", "hello needs the session id (an integer)"))
                continue
            if unit is not None and not isinstance(unit, str):
                await ws.send_str(_error("bad_message", "unit is a unit code (a string)"))
                continue
            try:
                options = LiveOptions.parse(data.get("sites"), data.get("depth"))
            except InvalidInput as exc:
                await ws.send_str(_error("bad_message", exc.message))
                continue
            if who.token_hash is not None:
                tracked = token_key(who.token_hash)
                revocations.track(tracked, ws, partial(app[keys.accounts_key].token_holds, token))
            caller = await app[keys.access_key].caller(who, client_address(request), unit=unit)
            caller.allow("viewer")
            await app[keys.access_key].session(caller, session_id)
            await app[keys.live_key].watch(session_id)
            if tracked is not None and revocations.revoked_since(tracked, asked):
                raise Unauthorized("this sign-in has ended; sign in again")
        except (Unauthorized, Forbidden, NotFound) as exc:
            if tracked is not None:
                revocations.untrack(tracked, ws)
            if not ws.closed:  # else a revocation has said so already
                code, close = _refusal(exc)
                await ws.send_str(_error(code, exc.message))
                await ws.close(code=close, message=code.encode())
            return None
        except StoreUnavailable:
            # as on /ws/checkin: the client comes back after its backoff
            if tracked is not None:
                revocations.untrack(tracked, ws)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"database unavailable")
            return None
        return session_id, caller, options, tracked
    return None


def _refusal(exc: Unauthorized | Forbidden | NotFound) -> tuple[str, int]:
    """(error code, close code) of a refused hello: the contract's three, whatever the
    policy's own code (an unknown or hidden session is `not_found`)."""
    if isinstance(exc, Forbidden):
        return "forbidden", CLOSE_FORBIDDEN
    if isinstance(exc, NotFound):
        return "not_found", CLOSE_NOT_FOUND
    return "unauthorized", CLOSE_UNAUTHORIZED


async def _watch(
    request: web.Request,
    ws: web.WebSocketResponse,
    session_id: int,
    scope: str | None,
    options: LiveOptions,
) -> None:
    fanout = request.app[keys.fanout_key]
    writer = SocketWriter(ws, request.transport)
    monitor = Monitor(writer.write_now)
    first = await fanout.subscribe(session_id, monitor, scope, options)
    task = asyncio.create_task(
        monitor.run(first, writer.send, lambda: fanout.snapshot(session_id, scope, options))
    )
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
        fanout.unsubscribe(session_id, monitor, scope, options)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
