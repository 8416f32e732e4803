"""A site token reset reaches every instance at once: two real `streamsvc serve` processes on
one PostgreSQL and one Redis, a coordinator's websocket open on B, the reset through A's API.

B's socket gets the unauthorized error and close 4401 within a second; the old token is then
refused on B (hello and HTTP), and the new token works on both.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import websockets
from builders import checkin
from conftest import ADMIN
from instances_harness import running_instances
from test_instances import setup_session
from websockets.exceptions import ConnectionClosed

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def two(tmp_path, redis_prefix, monkeypatch) -> AsyncIterator[list[str]]:
    """Two instances on one new PostgreSQL database and one Redis: their base URLs."""
    async with running_instances(tmp_path, redis_prefix, monkeypatch) as cluster:
        yield cluster.urls


def ws_url(base: str) -> str:
    return base.replace("http", "ws", 1) + "/ws/checkin"


async def hello(base: str, token: str) -> tuple[websockets.ClientConnection, dict]:
    ws = await websockets.connect(ws_url(base))
    await ws.send(json.dumps({"type": "hello", "token": token, "client": "e2e"}))
    return ws, json.loads(await asyncio.wait_for(ws.recv(), 5))


async def closed_with(ws: websockets.ClientConnection, timeout: float) -> int | None:
    """The close code the server sent, once the socket is closed."""
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), timeout)
    return info.value.rcvd.code if info.value.rcvd is not None else None


async def post_checkin(http: aiohttp.ClientSession, base: str, sid: int, token: str) -> int:
    async with http.post(
        f"{base}/api/v1/sessions/{sid}/checkins",
        json={"items": [checkin("10000001")]},
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        return r.status


async def test_a_reset_on_one_instance_closes_the_old_tokens_socket_on_the_other(two):
    a, b = two
    async with aiohttp.ClientSession() as http:
        sid, site = await setup_session(http, a)
        old = site["token"]
        device, welcome = await hello(b, old)
        assert welcome["type"] == "welcome"
        assert await post_checkin(http, b, sid, old) == 200  # B caches the old token

        started = time.monotonic()
        async with http.post(
            f"{a}/api/v1/sessions/{sid}/sites/{site['id']}/token", headers=AUTH
        ) as r:
            assert r.status == 200, await r.text()
            new = (await r.json())["token"]
        error = json.loads(await asyncio.wait_for(device.recv(), 1))
        assert (error["type"], error["code"]) == ("error", "unauthorized")
        assert await closed_with(device, 1) == 4401
        assert time.monotonic() - started < 1.5  # the reset's answer, then the close: at once

        again, refused = await hello(b, old)
        assert (refused["type"], refused["code"]) == ("error", "unauthorized")
        assert await closed_with(again, 5) == 4401
        assert await post_checkin(http, b, sid, old) == 401
        assert await post_checkin(http, a, sid, old) == 401

        for base in (a, b):
            ws, welcome = await hello(base, new)
            assert welcome["type"] == "welcome"
            await ws.close()
            assert await post_checkin(http, base, sid, new) == 200
