"""Live counts: /ws/monitor and /live, restart, two instances over in-process and Redis buses."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiohttp import WSMsgType
from builders import MEMBERS, add_site, checkin, iso, now, open_session, seed_roster
from conftest import ADMIN, REDIS_URL

from streamsvc.bus import MemoryBus
from streamsvc.web import keys
from streamsvc.web.app import create_app
from streamsvc.web.fanout import MONITOR_QUEUE, Monitor


async def monitor(client, sid: int):
    ws = await client.ws_connect("/ws/monitor")
    await ws.send_json({"type": "hello", "token": ADMIN, "session": sid})
    first = await ws.receive_json()
    assert first["type"] == "snapshot"
    return ws, first


async def until(ws, predicate, limit: int = 50) -> dict:
    """Read deltas until one satisfies `predicate` (counts may arrive over several deltas)."""
    for _ in range(limit):
        msg = await asyncio.wait_for(ws.receive_json(), 10)
        if predicate(msg):
            return msg
    raise AssertionError("no matching message")


async def post(client, site, *events):
    r = await client.post(
        f"/api/v1/sessions/{site['session']}/checkins",
        json={"items": list(events)},
        headers={"Authorization": f"Bearer {site['token']}"},
    )
    assert r.status == 200
    return (await r.json())["results"]


@pytest.fixture
async def setup(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["DB1"])
    site = await add_site(client, admin_headers, session["id"], kind="broadcast", unit="DB1")
    return session, site


async def test_a_monitor_that_offers_compression_reads_compressed_deltas(client, setup):
    """Browsers and the websockets library offer permessage-deflate: deltas, compressed once
    for all monitors, must read back exactly, after the snapshot and a resync."""
    session, site = setup
    ws = await client.ws_connect("/ws/monitor", compress=15)
    assert "permessage-deflate" in ws._response.headers.get("Sec-WebSocket-Extensions", "")
    await ws.send_json({"type": "hello", "token": ADMIN, "session": session["id"]})
    snap = await ws.receive_json()
    assert snap["type"] == "snapshot" and snap["live"]["present"] == 0
    await post(client, site, checkin("10000001"), checkin("10000003"))
    delta = await until(ws, lambda m: m.get("present") == 2)
    assert delta["type"] == "delta" and delta["seq"] == snap["seq"] + 1
    await ws.send_json({"type": "resync"})
    again = await until(ws, lambda m: m["type"] == "snapshot")
    assert again["live"]["present"] == 2
    await ws.close()


async def test_a_monitor_speaking_json_in_binary_frames_is_understood(client, setup):
    session, _site = setup
    ws = await client.ws_connect("/ws/monitor")
    hello = {"type": "hello", "token": ADMIN, "session": session["id"]}
    await ws.send_bytes(orjson.dumps(hello))
    first = await ws.receive_json()
    assert first["type"] == "snapshot"
    await ws.send_bytes(orjson.dumps({"type": "resync"}))
    again = await asyncio.wait_for(ws.receive_json(), 10)
    assert again["type"] == "snapshot"
    assert again["live"]["expected"] == first["live"]["expected"] == 4
    await ws.close()


async def test_snapshot_then_deltas_with_seq_carrying_what_changed(client, setup):
    session, site = setup
    ws, snap = await monitor(client, session["id"])
    live = snap["live"]
    assert (live["session"], live["expected"], live["present"], live["guests"]) == (
        session["id"], 4, 0, 0
    )  # fmt: skip
    assert [u["code"] for u in live["units"]] == ["DB1", "CB1", "CB2"]
    assert live["sites"][0]["connected"] is False
    seq = snap["seq"]

    checkins = [checkin("10000001"), checkin("10000003"), checkin("10000005")]
    await post(client, site, *checkins)
    delta = await until(ws, lambda m: m.get("present") == 2)
    assert delta["type"] == "delta" and delta["seq"] == seq + 1
    assert delta["unexpected"] == 1
    assert {u["code"]: u["present"] for u in delta["units"]} == {"DB1": 2, "CB1": 1, "CB2": 1}
    assert delta["sites"][0]["present"] == 3 and delta["sites"][0]["last_event_at"]

    # a void takes a check-in back; the latest guest headcount wins
    await post(
        client,
        site,
        {"type": "void", "id": str(uuid.uuid4()), "target": checkins[0]["id"]},
        {"type": "guests", "id": str(uuid.uuid4()), "count": 40, "ts": iso(now())},
    )
    delta = await until(ws, lambda m: m.get("guests") == 40)
    assert delta["present"] == 1
    assert delta["seq"] > seq + 1

    r = await client.get(
        f"/api/v1/sessions/{session['id']}/live", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    http_live = await r.json()
    assert (http_live["present"], http_live["guests"], http_live["unexpected"]) == (1, 40, 1)

    await ws.send_json({"type": "resync"})
    fresh = await until(ws, lambda m: m["type"] == "snapshot")
    assert fresh["live"]["present"] == 1 and fresh["seq"] >= delta["seq"]
    await ws.close()


async def test_a_coordinator_connecting_shows_the_site_connected(client, setup):
    session, site = setup
    ws, _ = await monitor(client, session["id"])
    device = await client.ws_connect("/ws/checkin")
    await device.send_json({"type": "hello", "token": site["token"], "client": "d"})
    await device.receive_json()
    delta = await until(ws, lambda m: m.get("sites") and m["sites"][0]["connected"])
    assert delta["sites"][0]["id"] == site["id"]
    await device.close()
    await until(ws, lambda m: m.get("sites") and not m["sites"][0]["connected"])
    await ws.close()


async def test_monitor_hello_errors(client, setup):
    session, site = setup
    ws = await client.ws_connect("/ws/monitor")
    await ws.send_json({"type": "hello", "token": site["token"], "session": session["id"]})
    assert (await ws.receive_json())["code"] == "unauthorized"
    await ws.receive()
    assert ws.close_code == 4401
    ws = await client.ws_connect("/ws/monitor")
    await ws.send_str("nope")
    assert (await ws.receive_json())["code"] == "bad_message"
    await ws.send_json({"type": "hello", "token": ADMIN, "session": 424242})
    assert (await ws.receive_json())["code"] == "not_found"
    msg = await ws.receive()
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)


async def test_a_restart_shows_the_same_numbers(aiohttp_client, settings, admin_headers):
    client = await aiohttp_client(create_app(settings))
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    site = await add_site(client, admin_headers, session["id"])
    await post(client, site, checkin("10000001"), checkin("10000002"), checkin("99999999"))
    await post(
        client, site, {"type": "guests", "id": str(uuid.uuid4()), "count": 7, "ts": iso(now())}
    )
    url = f"/api/v1/sessions/{session['id']}/live"
    before = await (await client.get(url, headers=admin_headers)).json()
    await client.close()

    again = await aiohttp_client(create_app(settings))
    after = await (await again.get(url, headers=admin_headers)).json()
    assert after == before
    assert (after["present"], after["guests"]) == (2, 7)


async def two_instances(aiohttp_client, settings, bus_a=None, bus_b=None):
    apps = []
    for bus in (bus_a, bus_b):
        app = create_app(settings)
        if bus is not None:
            app[keys.bus_key] = bus
        apps.append(await aiohttp_client(app))
    return apps


async def test_two_instances_on_one_bus_see_each_others_checkins(
    aiohttp_client, settings, admin_headers
):
    bus = MemoryBus()
    a, b = await two_instances(aiohttp_client, settings, bus, bus)
    await seed_roster(a, admin_headers)
    session = await open_session(a, admin_headers)
    ws, _ = await monitor(b, session["id"])
    site = await add_site(a, admin_headers, session["id"])  # registered on the other one
    await post(a, site, checkin("10000001"), checkin("10000006"))
    delta = await until(ws, lambda m: m.get("present") == 2 and m.get("sites"))
    assert [s["id"] for s in delta["sites"]] == [site["id"]]
    await ws.close()


@pytest.mark.redis
@pytest.mark.postgres
async def test_two_instances_over_redis_share_counts_and_connections(
    aiohttp_client, database_url, redis_prefix, admin_headers
):
    if database_url.startswith("sqlite"):
        pytest.skip("instances on separate hosts share PostgreSQL, not a SQLite file")
    from conftest import Settings

    settings = Settings(
        database=database_url, admin_token=ADMIN, redis=REDIS_URL, redis_prefix=redis_prefix
    )
    a, b = await two_instances(aiohttp_client, settings)
    health = await (await a.get("/healthz")).json()
    assert health == {"status": "ok", "database": "ok", "redis": "ok"}
    await seed_roster(a, admin_headers)
    session = await open_session(a, admin_headers)
    site = await add_site(a, admin_headers, session["id"])
    ws, _ = await monitor(b, session["id"])
    device = await a.ws_connect("/ws/checkin")
    await device.send_json({"type": "hello", "token": site["token"], "client": "d"})
    await device.receive_json()
    await until(ws, lambda m: m.get("sites") and m["sites"][0]["connected"])
    await device.send_json({"type": "batch", "items": [checkin("10000002"), checkin("10000004")]})
    await device.receive_json()
    await until(ws, lambda m: m.get("present") == 2)
    await device.close()
    await until(ws, lambda m: m.get("sites") and not m["sites"][0]["connected"])
    await ws.close()


async def test_check_ins_go_on_when_redis_is_unreachable(aiohttp_client, database_url):
    from conftest import Settings

    settings = Settings(database=database_url, admin_token=ADMIN, redis="redis://127.0.0.1:1/0")
    client = await aiohttp_client(create_app(settings))
    r = await client.get("/healthz")
    body = await r.json()
    assert r.status == 503
    assert (body["database"], body["redis"][:7]) == ("ok", "failing")
    headers = {"Authorization": f"Bearer {ADMIN}"}
    await seed_roster(client, headers)
    session = await open_session(client, headers)
    site = await add_site(client, headers, session["id"])
    results = await post(client, site, checkin("10000001"))
    assert results[0]["result"] == "accepted"
    live = await (
        await client.get(f"/api/v1/sessions/{session['id']}/live", headers=headers)
    ).json()
    assert live["present"] == 1


async def test_a_monitor_that_stops_reading_skips_to_a_snapshot_and_slows_no_one(client, setup):
    """A stuck monitor's socket is full: its deltas queue, the queue overflows, and it is left
    with one fresh snapshot to send; meanwhile check-ins are acked and another monitor gets
    every delta in order."""
    session, site = setup
    fanout = client.app[keys.fanout_key]
    frames: list[bytes] = []
    delivered = asyncio.Event()
    never = asyncio.Event()

    def write_now(delta) -> bool:
        frames.append(delta.data)
        delivered.set()
        return True

    async def sent(_data: bytes) -> None:
        return None

    async def stuck_send(_data: bytes) -> None:
        await never.wait()  # the socket never drains: not even the first snapshot goes out

    keeping_up = Monitor(write_now)
    stuck = Monitor(lambda delta: False)
    senders = []
    for monitor, send in ((keeping_up, sent), (stuck, stuck_send)):
        first = await fanout.subscribe(session["id"], monitor)
        senders.append(asyncio.create_task(monitor.run(first, send, lambda: b"{}")))
    try:
        for code in [m["code"] for m in MEMBERS[:4]] * 3:
            delivered.clear()
            results = await post(client, site, checkin(code))
            assert results[0]["result"] == "accepted"
            await asyncio.wait_for(delivered.wait(), 10)  # one delta each
    finally:
        for monitor in (keeping_up, stuck):
            fanout.unsubscribe(session["id"], monitor)
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)

    deltas = [orjson.loads(data) for data in frames]
    seqs = [d["seq"] for d in deltas]
    assert len(deltas) == 12 > MONITOR_QUEUE
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # the stuck one holds one request for a fresh snapshot, none of the deltas
    assert stuck.skipped >= 1 and stuck.snapshot_pending and stuck.queue.qsize() == 1
