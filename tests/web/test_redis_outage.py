"""Redis going away and coming back: check-ins go on, /healthz tells, counts catch up.

Instance B reaches Redis through a small TCP relay that the test cuts and restores, so the
real Redis server stays up for everyone else."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from builders import add_site, checkin, open_session, seed_roster
from conftest import ADMIN, REDIS_HOST, REDIS_PORT, Settings

from streamsvc.web.app import create_app

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


class Relay:
    """A TCP relay to the real Redis that can be cut (every connection dropped) and restored."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(REDIS_HOST, REDIS_PORT)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()


async def test_counts_catch_up_after_redis_comes_back(aiohttp_client, database_url, redis_prefix):
    if database_url.startswith("sqlite"):
        pytest.skip("two instances share PostgreSQL")
    relay = Relay()
    await relay.start()
    direct = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    via_relay = f"redis://127.0.0.1:{relay.port}/0"
    base = Settings(database=database_url, admin_token=ADMIN, redis_prefix=redis_prefix)
    a = await aiohttp_client(create_app(base.with_(redis=direct)))
    b = await aiohttp_client(create_app(base.with_(redis=via_relay)))
    headers = {"Authorization": f"Bearer {ADMIN}"}
    await seed_roster(a, headers)
    session = await open_session(a, headers)
    site = await add_site(a, headers, session["id"])
    live_url = f"/api/v1/sessions/{session['id']}/live"
    # an organizer watches on each instance: the deltas tell when each has caught up
    watching = [await watch(client, session["id"]) for client in (a, b)]

    async def post(client, *items):
        r = await client.post(
            f"/api/v1/sessions/{session['id']}/checkins",
            json={"items": list(items)},
            headers={"Authorization": f"Bearer {site['token']}"},
        )
        return [x["result"] for x in (await r.json())["results"]]

    await relay.cut()
    health = await b.get("/healthz")
    assert health.status == 503
    assert (await health.json())["redis"].startswith("failing")
    # both instances keep taking check-ins; B misses A's while its Redis is gone
    assert await post(a, checkin("10000001"), checkin("10000002")) == ["accepted"] * 2
    assert await post(b, checkin("10000003")) == ["accepted"]

    await relay.start()  # Redis is back (same port): B reads what it missed, A what B sent
    for ws in watching:
        await until_present(ws, 3)
        await ws.close()
    assert (await b.get("/healthz")).status == 200
    for client in (a, b):
        assert (await (await client.get(live_url, headers=headers)).json())["present"] == 3
    await relay.cut()


async def watch(client, session_id: int):
    ws = await client.ws_connect("/ws/monitor")
    await ws.send_json({"type": "hello", "token": ADMIN, "session": session_id})
    assert (await ws.receive_json())["live"]["present"] == 0
    return ws


async def until_present(ws, present: int) -> None:
    """Read the monitor's deltas until one shows `present` (each waited for, bounded)."""
    for _ in range(50):
        msg = await asyncio.wait_for(ws.receive_json(), 20)
        if msg.get("present") == present:
            return
    raise AssertionError(f"present never reached {present}")
