"""Redis restarted while two instances run: check-ins go on, /healthz tells, monitors converge.

Two real `streamsvc serve` processes share one PostgreSQL database and a `redis-server` of the
test's own (nothing saved to disk). Sites check in on both instances at a steady pace while a
monitor watches the session on each. Redis is stopped and started again on the same port:
both instances must keep acking check-ins, answer /healthz 503 naming Redis while it is away
and 200 once it is back, and afterwards both monitors must show the same counts, those of every
check-in accepted on either instance.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import ADMIN, create_pg_database, drop_pg_database, require_postgres
from serverproc import eventually, until
from steady import SteadySite, skip_or_fail
from streamsvc_clients.load import LoadConfig, prepare
from streamsvc_clients.monitor import LiveView
from streamsvc_clients.protocol import ws_url
from streamsvc_clients.serverproc import RedisServer, ServerProcess
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SITES = 10  # half on each instance
RATE = 100.0  # check-ins/s over all sites
PER_SITE = 200


@pytest.fixture
async def own_redis(tmp_path):
    skip_or_fail(RedisServer.unavailable())
    server = RedisServer(tmp_path / "redis.log")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def instances(own_redis: RedisServer, tmp_path):
    """Two instances on one PostgreSQL database and the test's own Redis."""
    require_postgres()
    database = await create_pg_database()
    procs = [
        ServerProcess(
            database, tmp_path / f"server-{name}.log", admin_token=ADMIN, redis=own_redis.url
        )
        for name in "ab"
    ]
    try:
        for proc in procs:
            await proc.start_async()
        yield procs
    finally:
        for proc in procs:
            proc.stop()
        await drop_pg_database(database)


class Watcher:
    """A monitor on one instance: a `LiveView` kept up to date over `/ws/monitor`."""

    def __init__(self, url: str, session_id: int) -> None:
        self.url, self.session_id = ws_url(url, "/ws/monitor"), session_id
        self.view = LiveView()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with connect(self.url, compression=None, proxy=None) as ws:
            hello = {"type": "hello", "token": ADMIN, "session": self.session_id}
            await ws.send(orjson.dumps(hello), text=True)
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    if self.view.apply(orjson.loads(raw)):
                        await ws.send(b'{"type": "resync"}', text=True)

    def counts(self) -> dict[str, Any] | None:
        """The view's counts, without who is connected right now (that moves on its own)."""
        live = self.view.live
        if live is None:
            return None
        sites = [{k: v for k, v in s.items() if k != "connected"} for s in live["sites"]]
        return {**live, "sites": sites}


async def health(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{url}/healthz") as resp:
        return resp.status, await resp.json()


async def test_check_ins_go_on_and_monitors_converge_across_a_redis_restart(
    instances: list[ServerProcess], own_redis: RedisServer
) -> None:
    cfg = LoadConfig(url=instances[0].url, admin_token=ADMIN, sites=SITES, members=SITES * PER_SITE)
    prepared = await prepare(cfg)
    watchers = [Watcher(proc.url, prepared.session_id) for proc in instances]
    sites = [
        SteadySite(
            ws_url(instances[i % 2].url),
            token,
            prepared.members[i * PER_SITE : (i + 1) * PER_SITE],
            interval=SITES / RATE,
            ceiling=2.0,
        )
        for i, token in enumerate(prepared.tokens)
    ]
    tasks = [asyncio.create_task(w.run()) for w in watchers]
    runs = [asyncio.create_task(site.run()) for site in sites]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            await until(lambda: all(len(s.acks) >= 3 for s in sites), 30, "every site acked")

            await asyncio.to_thread(own_redis.stop)
            for proc in instances:

                async def redis_failing(url: str = proc.url) -> bool:
                    status, body = await health(http, url)
                    return status == 503 and body["redis"].startswith("failing")

                await eventually(redis_failing, 15, f"{proc.url}/healthz naming Redis")
            acked = [len(s.acks) for s in sites]
            await until(
                lambda: all(len(s.acks) >= n + 3 for s, n in zip(sites, acked, strict=True)),
                15,
                "every site acked on both instances while Redis is away",
            )

            await asyncio.to_thread(own_redis.start)
            for proc in instances:

                async def healthy(url: str = proc.url) -> bool:
                    return await health(http, url) == (
                        200,
                        {"status": "ok", "database": "ok", "redis": "ok"},
                    )

                await eventually(healthy, 15, f"{proc.url}/healthz ok again")
            for site in sites:
                site.wind_down()
            await asyncio.wait_for(asyncio.gather(*runs), 30)

        accepted = sum(r == "accepted" for s in sites for r in s.results.values())
        sent = sum(len(s.sent) for s in sites)
        assert accepted == sent, "each event checks a member in for the first time"

        def converged() -> bool:
            first, second = (w.counts() for w in watchers)
            return first is not None and first == second and first["present"] == accepted

        await until(converged, 20, f"both monitors showing {accepted} present")
        assert sum(s["present"] for s in watchers[0].counts()["sites"]) == accepted  # type: ignore[index]
    finally:
        for site in sites:
            site.stop()
        for task in [*runs, *tasks]:
            task.cancel()
        await asyncio.gather(*runs, *tasks, return_exceptions=True)
