#!/usr/bin/env python3
"""A bare parse-and-ack server: the ceiling `bench/checkin --against-bare` measures against.

    python bench/checkin_bare.py --port 8081

It speaks just enough of the contract for `streamsvc-load` to run unchanged: `/healthz`, the
admin calls the load generator makes to set up (units, members, a session, sites: remembered
in memory, nothing checked), and `/ws/checkin` (hello -> welcome, then for each frame one
`{"type": "ack", "results": [...]}` answering `accepted` for every event). Each frame is parsed
with orjson and its ack encoded with orjson, on aiohttp and on uvloop when it is installed,
as `streamsvc serve` does; nothing is stored, decided or published. So the figure it reaches
under the same load, pinned to the same core, is what this machine's websocket stack allows,
and streamsvc's rate divided by it is the share left to everything the service does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import WSMsgType, web

MAX_FRAME = 1024 * 1024


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


class Bare:
    """What the load generator's setup left behind, so that it finds it again."""

    def __init__(self) -> None:
        self.units: dict[str, dict[str, Any]] = {}
        self.members = 0
        self.sessions = 0
        self.sites = 0

    async def healthz(self, _: web.Request) -> web.Response:
        return _json({"status": "ok", "database": "ok", "redis": "disabled"})

    async def get_units(self, _: web.Request) -> web.Response:
        return _json({"units": list(self.units.values())})

    async def post_units(self, request: web.Request) -> web.Response:
        units = (await request.json(loads=orjson.loads))["units"]
        self.units.update((u["code"], u) for u in units)
        return _json({"created": len(units), "updated": 0})

    async def get_members(self, _: web.Request) -> web.Response:
        return _json({"members": [], "total": self.members})

    async def post_members(self, request: web.Request) -> web.Response:
        rows = (await request.read()).count(b"\n") - 1
        self.members += rows
        return _json({"created": rows, "updated": 0})

    async def post_session(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        self.sessions += 1
        return _json({**body, "id": self.sessions, "state": "open", "expected": 0}, 201)

    async def get_session(self, request: web.Request) -> web.Response:
        return _json({"id": int(request.match_info["sid"]), "state": "open"})

    async def post_site(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        self.sites += 1
        site = {"id": self.sites, "name": body.get("name"), "kind": body.get("kind")}
        return _json({**site, "unit": None, "capacity": None, "token": secrets.token_hex(8)}, 201)

    async def checkin(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, compress=False)
        await ws.prepare(request)
        welcomed = False
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            data = orjson.loads(msg.data)
            if not welcomed:
                welcomed = True
                now = datetime.now(UTC).isoformat(timespec="seconds")[:19] + "Z"
                welcome = {"type": "welcome", "session": {"id": 1}, "site": {"id": 1}}
                await ws.send_str(orjson.dumps({**welcome, "server_time": now}).decode())
                continue
            items = data["items"] if data.get("type") == "batch" else [data]
            results = [{"id": item.get("id"), "result": "accepted"} for item in items]
            await ws.send_frame(orjson.dumps({"type": "ack", "results": results}), WSMsgType.TEXT)
        return ws

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/v1/units", self.get_units)
        app.router.add_post("/api/v1/units", self.post_units)
        app.router.add_get("/api/v1/members", self.get_members)
        app.router.add_post("/api/v1/members", self.post_members)
        app.router.add_post("/api/v1/sessions", self.post_session)
        app.router.add_get("/api/v1/sessions/{sid}", self.get_session)
        app.router.add_post("/api/v1/sessions/{sid}/sites", self.post_site)
        app.router.add_get("/ws/checkin", self.checkin)
        return app


def main() -> None:
    p = argparse.ArgumentParser(
        prog="checkin_bare.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    args = p.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(Bare().app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
