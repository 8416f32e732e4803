"""Revocations: what one instance revokes closes the sockets tracked on every instance, on the
in-process bus and on Redis; the site-token cache forgets a revoked site at once and expires on
its own when a revocation never arrives.

Sockets are small fakes where no server is needed; the last tests run two real apps on one
database with their control buses shared, a coordinator's socket on one and the reset on the
other.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import WSMsgType
from builders import add_site, checkin, open_session, seed_roster
from conftest import REDIS_URL

from streamsvc.bus import MemoryBus
from streamsvc.bus.redis import RedisBus
from streamsvc.domain.models import NewSite, Unit
from streamsvc.errors import Unauthorized
from streamsvc.ports import Bus
from streamsvc.services.checkins import SITE_TTL, CheckinService, GroupCommitter
from streamsvc.services.revocations import (
    CLOSE_UNAUTHORIZED,
    Revocations,
    decode,
    encode,
    site_ids,
    site_key,
    token_key,
)
from streamsvc.services.sessions import NewSessionData
from streamsvc.services.tokens import hash_token
from streamsvc.web import keys
from streamsvc.web.app import create_app


class FakeSocket:
    """What `Revocations` needs of a websocket: the frames sent to it and how it was closed."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.close_code: int | None = None

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    async def send_str(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def close(self, *, code: int, message: bytes) -> bool:
        self.close_code = code
        return True


async def until(check, timeout: float = 5.0, what: str = "the condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def two_instances(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Revocations, ...]]:
    """Two instances' `Revocations`, on one in-process bus or on Redis under a prefix of its own."""
    if request.param == "memory":
        shared = MemoryBus()
        buses: tuple[Bus, Bus] = (shared, shared)
    else:
        prefix = request.getfixturevalue("redis_prefix")
        buses = (
            RedisBus(REDIS_URL, prefix=f"{prefix}:control"),
            RedisBus(REDIS_URL, prefix=f"{prefix}:control"),
        )
    pair = (Revocations(buses[0]), Revocations(buses[1]))
    for revocations in pair:
        await revocations.start()
    yield pair
    for revocations in pair:
        await revocations.stop()


async def test_a_revocation_on_one_instance_closes_the_sockets_tracked_on_the_other(
    two_instances,
):
    a, b = two_instances
    on_a, on_b, other_site, signed_in = FakeSocket(), FakeSocket(), FakeSocket(), FakeSocket()
    a.track(site_key(7), on_a)
    b.track(site_key(7), on_b)
    b.track(site_key(8), other_site)
    b.track(token_key("h1"), signed_in)
    heard_a: list[list[str]] = []
    heard_b: list[list[str]] = []
    a.on_revoked.append(lambda ks: heard_a.append(list(ks)))
    b.on_revoked.append(lambda ks: heard_b.append(list(ks)))

    await a.revoke([site_key(7), token_key("h1")], "the site's token was reset")

    await until(lambda: on_b.closed and signed_in.closed, what="the other instance's sockets")
    await until(lambda: on_a.closed, what="this instance's socket")
    for ws in (on_a, on_b, signed_in):
        assert ws.close_code == CLOSE_UNAUTHORIZED
        assert ws.sent == [
            {"type": "error", "code": "unauthorized", "message": "the site's token was reset"}
        ]
    assert not other_site.closed and other_site.sent == []
    assert b.tracked(site_key(8)) == 1
    assert b.tracked(site_key(7)) == 0 and a.tracked(site_key(7)) == 0
    await asyncio.sleep(0.1)  # its own message comes back to `a`: applied once, not twice
    assert heard_a == heard_b == [[site_key(7), token_key("h1")]]


async def test_an_untracked_socket_is_left_alone(two_instances):
    a, b = two_instances
    gone, staying = FakeSocket(), FakeSocket()
    b.track(site_key(3), gone)
    b.track(site_key(3), staying)
    b.untrack(site_key(3), gone)
    await a.revoke([site_key(3)])
    await until(lambda: staying.closed, what="the tracked socket")
    await asyncio.sleep(0.05)
    assert not gone.closed


async def test_a_hello_answered_across_a_revocation_is_told_so():
    now = [100.0]
    revocations = Revocations(MemoryBus(), clock=lambda: now[0])
    await revocations.start()
    try:
        asked = revocations.clock()
        now[0] = 101.0
        await revocations.revoke([site_key(5)])
        assert revocations.revoked_since(site_key(5), asked)
        assert not revocations.revoked_since(site_key(5), 101.5)  # asked after: read afresh
        assert not revocations.revoked_since(site_key(6), asked)
        now[0] = 101.0 + 61
        await revocations.revoke([site_key(9)])  # old entries are forgotten meanwhile
        assert not revocations.revoked_since(site_key(5), asked)
    finally:
        await revocations.stop()


async def test_redis_out_of_reach_still_closes_the_local_sockets():
    revocations = Revocations(RedisBus("redis://127.0.0.1:1/0", prefix="streamsvc-test-gone"))
    await revocations.start()  # starts anyway: check-ins must not wait for Redis
    try:
        ws = FakeSocket()
        revocations.track(site_key(1), ws)
        await revocations.revoke([site_key(1)])  # logged, not raised: the reset is done
        await until(lambda: ws.closed, what="the local socket")
    finally:
        await revocations.stop()


def test_the_control_message_round_trips_and_strangers_are_ignored():
    assert decode(encode("o1", ["site:1", "token:ab"], "why")) == (
        "o1",
        ["site:1", "token:ab"],
        "why",
    )
    for data in (b"not json", b"[]", b'{"type": "events"}', b'{"type": "revoked", "keys": [1]}'):
        assert decode(data) is None
    assert site_ids(["site:12", "token:12", "site:x", "site:", "site:3"]) == [12, 3]


# -- the site-token cache ---------------------------------------------------------------

START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


async def a_site(store, token: str = "old-token"):
    await store.upsert_units([Unit("P", "Tỉnh ủy Bắc Kạn")])
    session = await store.create_session(
        NewSessionData("Nghị quyết", START, START + timedelta(hours=2), ("P",), 15, None),
        from_excused_of=None,
    )
    return await store.create_site(
        NewSite(session.id, "Hội trường", "hall", None, None, hash_token(token))
    )


class Reads:
    """The real store, counting token look-ups and able to hold one until told to go on."""

    def __init__(self, store) -> None:
        self.store = store
        self.count = 0
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def site_by_token_hash(self, token_hash: str):
        self.count += 1
        found = await self.store.site_by_token_hash(token_hash)
        if self.hold is not None:
            self.reading.set()
            await self.hold.wait()
            self.hold = None
        return found


def checkins_on(store, clock) -> tuple[CheckinService, Reads]:
    reads = Reads(store)
    return CheckinService(reads, GroupCommitter(store), clock=clock), reads  # type: ignore[arg-type]


async def test_a_reset_site_is_forgotten_at_once_and_its_old_token_refused(store):
    site = await a_site(store)
    now = [0.0]
    service, reads = checkins_on(store, lambda: now[0])
    assert (await service.site_for_token("old-token")).id == site.id
    await service.site_for_token("old-token")
    assert reads.count == 1  # cached: the HTTP check-in path reads no row

    await store.reset_site_token(site.id, hash_token("new-token"))
    service.forget_revoked([site_key(site.id), token_key("unrelated")])
    with pytest.raises(Unauthorized):
        await service.site_for_token("old-token")
    assert (await service.site_for_token("new-token")).id == site.id


async def test_a_cached_token_expires_when_no_revocation_arrives(store):
    site = await a_site(store)
    now = [0.0]
    service, reads = checkins_on(store, lambda: now[0])
    await service.site_for_token("old-token")
    await store.reset_site_token(site.id, hash_token("new-token"))  # the message was lost
    now[0] = SITE_TTL - 0.1
    await service.site_for_token("old-token")
    now[0] = SITE_TTL + 0.1
    with pytest.raises(Unauthorized):
        await service.site_for_token("old-token")
    assert reads.count == 2


async def test_a_read_that_crosses_a_revocation_is_read_again_not_cached(store):
    site = await a_site(store)
    service, reads = checkins_on(store, lambda: 0.0)
    reads.hold = asyncio.Event()
    hello = asyncio.create_task(service.site_for_token("old-token"))
    await reads.reading.wait()  # the old row was read; the reset lands before the answer
    await store.reset_site_token(site.id, hash_token("new-token"))
    service.forget_site(site.id)
    reads.hold.set()
    with pytest.raises(Unauthorized):
        await hello
    assert reads.count == 2


# -- two real apps on one database --------------------------------------------------------


def redis_outage_relay():
    """The cuttable TCP relay to Redis of tests/web/test_redis_outage.py (another folder, so
    loaded by its path)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "web" / "test_redis_outage.py"
    spec = importlib.util.spec_from_file_location("redis_outage_relay", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Relay()


async def two_apps(aiohttp_client, settings):
    """Two instances of the app on one database, each bus shared as Redis would share it."""
    live, control = MemoryBus(), MemoryBus()
    clients = []
    for _ in range(2):
        app = create_app(settings)
        app[keys.bus_key] = live
        app[keys.control_bus_key] = control
        clients.append(await aiohttp_client(app))
    return clients


async def hello(client, token: str):
    ws = await client.ws_connect("/ws/checkin")
    await ws.send_json({"type": "hello", "token": token, "client": "t"})
    return ws, await asyncio.wait_for(ws.receive_json(), 5)


async def test_a_token_reset_on_one_app_closes_the_socket_on_the_other(
    aiohttp_client, settings, admin_headers
):
    a, b = await two_apps(aiohttp_client, settings)
    await seed_roster(a, admin_headers)
    session = await open_session(a, admin_headers)
    site = await add_site(a, admin_headers, session["id"])
    device, welcome = await hello(b, site["token"])
    assert welcome["type"] == "welcome"
    url = f"/api/v1/sessions/{session['id']}/checkins"
    old = {"Authorization": f"Bearer {site['token']}"}
    r = await b.post(url, json={"items": [checkin("10000001")]}, headers=old)
    assert r.status == 200  # and B now holds the old token in its cache

    r = await a.post(
        f"/api/v1/sessions/{session['id']}/sites/{site['id']}/token", headers=admin_headers
    )
    assert r.status == 200, await r.text()
    new = (await r.json())["token"]

    error = await asyncio.wait_for(device.receive_json(), 1)
    assert (error["type"], error["code"]) == ("error", "unauthorized")
    closing = await asyncio.wait_for(device.receive(), 1)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert device.close_code == CLOSE_UNAUTHORIZED

    again, refused = await hello(b, site["token"])
    assert refused["code"] == "unauthorized"
    await again.receive()
    assert again.close_code == CLOSE_UNAUTHORIZED
    r = await b.post(url, json={"items": [checkin("10000002")]}, headers=old)
    assert r.status == 401
    for client in (a, b):
        ws, welcome = await hello(client, new)
        assert welcome["type"] == "welcome"
        await ws.close()
        r = await client.post(
            url, json={"items": [checkin("10000003")]}, headers={"Authorization": f"Bearer {new}"}
        )
        assert r.status == 200


async def test_a_revoked_site_socket_stores_nothing_more(aiohttp_client, settings, admin_headers):
    (client,) = [await aiohttp_client(create_app(settings))]
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    site = await add_site(client, admin_headers, session["id"])
    device, _ = await hello(client, site["token"])
    revocations = client.app[keys.revocations_key]
    assert revocations.tracked(site_key(site["id"])) == 1
    await revocations.revoke([site_key(site["id"])])
    assert (await asyncio.wait_for(device.receive_json(), 1))["code"] == "unauthorized"
    await device.send_json(checkin("10000001"))  # too late: the server has closed its side
    msg = await asyncio.wait_for(device.receive(), 1)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    live = await (
        await client.get(f"/api/v1/sessions/{session['id']}/live", headers=admin_headers)
    ).json()
    assert live["present"] == 0
    await until(lambda: revocations.tracked(site_key(site["id"])) == 0, what="the untrack")


async def test_when_the_bus_is_back_sockets_whose_token_no_longer_holds_are_closed():
    revocations = Revocations(MemoryBus())
    await revocations.start()
    try:
        reset, holding, unchecked = FakeSocket(), FakeSocket(), FakeSocket()
        answers = {reset: False, holding: True}

        def check(ws):
            async def holds() -> bool:
                return answers[ws]

            return holds

        revocations.track(site_key(1), reset, check(reset))
        revocations.track(site_key(2), holding, check(holding))
        revocations.track(site_key(3), unchecked)
        await revocations.recheck()  # what the bus calls once Redis is back
        await until(lambda: reset.closed, what="the socket whose token was reset")
        assert reset.close_code == CLOSE_UNAUTHORIZED and reset.sent[0]["code"] == "unauthorized"
        assert not holding.closed and not unchecked.closed
        assert revocations.tracked(site_key(1)) == 0 and revocations.tracked(site_key(2)) == 1
    finally:
        await revocations.stop()


async def test_a_coordinator_socket_is_rechecked_against_the_store(
    aiohttp_client, settings, admin_headers
):
    client = await aiohttp_client(create_app(settings))
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    site = await add_site(client, admin_headers, session["id"])
    device, _ = await hello(client, site["token"])
    revocations = client.app[keys.revocations_key]
    await revocations.recheck()
    assert revocations.tracked(site_key(site["id"])) == 1  # its token holds: left open
    store = client.app[keys.store_key]
    await store.reset_site_token(site["id"], hash_token("reset-while-redis-was-away"))
    await revocations.recheck()
    assert (await asyncio.wait_for(device.receive_json(), 1))["code"] == "unauthorized"
    await asyncio.wait_for(device.receive(), 1)
    assert device.close_code == CLOSE_UNAUTHORIZED


async def test_a_monitor_socket_is_rechecked_against_the_store(
    aiohttp_client, settings, admin_headers
):
    """A sign-out missed while the control bus was away still closes the monitor it opened."""
    client = await aiohttp_client(create_app(settings))
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    user = {
        "login": "watcher",
        "full_name": "Người xem",
        "unit": "TU",
        "role": "viewer",
        "password": "a-long-password",
    }
    r = await client.post("/api/v1/users", json=user, headers=admin_headers)
    assert r.status == 201, await r.text()
    r = await client.post(
        "/api/v1/auth/login", json={"login": "watcher", "password": "a-long-password"}
    )
    token = (await r.json())["token"]
    monitor = await client.ws_connect("/ws/monitor")
    await monitor.send_json({"type": "hello", "token": token, "session": session["id"]})
    assert (await asyncio.wait_for(monitor.receive_json(), 5))["type"] == "snapshot"
    revocations = client.app[keys.revocations_key]
    await revocations.recheck()
    assert not monitor.closed  # the sign-in holds: left open
    store = client.app[keys.store_key]
    await store.revoke_auth_token(hash_token(token), datetime.now(UTC))  # no message sent
    await revocations.recheck()
    while True:
        message = await asyncio.wait_for(monitor.receive(), 2)
        if message.type != WSMsgType.TEXT or json.loads(message.data)["type"] == "error":
            break
    if message.type == WSMsgType.TEXT:
        assert json.loads(message.data)["code"] == "unauthorized"
        await asyncio.wait_for(monitor.receive(), 2)
    assert monitor.close_code == CLOSE_UNAUTHORIZED


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_reset_missed_while_redis_was_away_closes_the_socket_once_it_is_back(
    aiohttp_client, database_url, redis_prefix, admin_headers
):
    if database_url.startswith("sqlite"):
        pytest.skip("two instances share PostgreSQL")
    from conftest import ADMIN, REDIS_HOST, REDIS_PORT, Settings

    relay = redis_outage_relay()
    await relay.start()
    base = Settings(database=database_url, admin_token=ADMIN, redis_prefix=redis_prefix)
    a = await aiohttp_client(create_app(base.with_(redis=f"redis://{REDIS_HOST}:{REDIS_PORT}/0")))
    b = await aiohttp_client(create_app(base.with_(redis=f"redis://127.0.0.1:{relay.port}/0")))
    await seed_roster(a, admin_headers)
    session = await open_session(a, admin_headers)
    site = await add_site(a, admin_headers, session["id"])
    device, _ = await hello(b, site["token"])
    try:
        await relay.cut()
        r = await a.post(
            f"/api/v1/sessions/{session['id']}/sites/{site['id']}/token", headers=admin_headers
        )
        assert r.status == 200
        with pytest.raises(asyncio.TimeoutError):  # B never heard of it
            await asyncio.wait_for(device.receive(), 0.5)
        await relay.start()  # Redis is back: B checks its sockets' tokens again
        assert (await asyncio.wait_for(device.receive_json(), 15))["code"] == "unauthorized"
        await asyncio.wait_for(device.receive(), 5)
        assert device.close_code == CLOSE_UNAUTHORIZED
    finally:
        await relay.cut()
