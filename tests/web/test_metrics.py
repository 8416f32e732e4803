"""`GET /metrics`: Prometheus text of a real app, and the figures move with real check-ins."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from builders import add_site, checkin, open_session, seed_roster
from conftest import ADMIN, REDIS_URL
from prometheus_client.parser import text_string_to_metric_families

from streamsvc.bus import MemoryBus
from streamsvc.config import Settings
from streamsvc.web import keys
from streamsvc.web.app import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client) -> Samples:
    r = await client.get("/metrics")  # no token
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(await r.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll until `check()` holds (a close is seen by the server a moment after the client)."""
    deadline = asyncio.get_running_loop().time() + 10
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def site(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["DB1"])
    return await add_site(client, admin_headers, session["id"])


async def test_checkin_outcomes_acks_commits_and_connections_are_counted(
    client, site, database_url
):
    before = await scrape(client)
    for result, reason in [("accepted", ""), ("duplicate", ""), ("rejected", "unknown_member")]:
        assert value(before, "streamsvc_checkin_events_total", result=result, reason=reason) == 0
    assert value(before, "streamsvc_sites_connected") == 0

    device = await client.ws_connect("/ws/checkin")
    await device.send_json({"type": "hello", "token": site["token"], "client": "d"})
    assert (await device.receive_json())["type"] == "welcome"
    monitor = await client.ws_connect("/ws/monitor")
    await monitor.send_json({"type": "hello", "token": ADMIN, "session": site["session"]})
    assert (await monitor.receive_json())["type"] == "snapshot"
    await monitor.send_json({"type": "resync"})
    assert (await monitor.receive_json())["type"] == "snapshot"

    first = checkin("10000001")
    batch = [
        first,
        checkin("10000001"),  # already present: accepted too
        first,  # the same id again: duplicate
        checkin("99999999"),  # unknown member
        {"type": "checkin", "id": str(uuid.uuid4()), "member": "10000002"},  # no ts: invalid
    ]
    await device.send_json({"type": "batch", "items": batch})
    assert (await device.receive_json())["type"] == "ack"
    await device.send_str("not json")
    assert (await device.receive_json())["code"] == "bad_message"

    after = await scrape(client)
    counts = {
        (result, reason): value(
            after, "streamsvc_checkin_events_total", result=result, reason=reason
        )
        for result, reason in [
            ("accepted", ""),
            ("duplicate", ""),
            ("rejected", "unknown_member"),
            ("rejected", "invalid"),
            ("rejected", "session_closed"),
        ]
    }
    assert counts == {
        ("accepted", ""): 2,
        ("duplicate", ""): 1,
        ("rejected", "unknown_member"): 1,
        ("rejected", "invalid"): 1,
        ("rejected", "session_closed"): 0,
    }
    assert value(after, "streamsvc_checkin_bad_frames_total") == 1
    assert value(after, "streamsvc_checkin_ack_seconds_count") == 2  # both frames answered
    assert value(after, "streamsvc_checkin_ack_seconds_bucket", le="+Inf") == 2
    assert value(after, "streamsvc_group_commit_events_count") == 1
    assert value(after, "streamsvc_group_commit_events_sum") == 4  # invalid never reaches it
    assert value(after, "streamsvc_group_commit_seconds_count") == 1
    assert value(after, "streamsvc_group_commit_failures_total") == 0
    assert value(after, "streamsvc_sites_connected") == 1
    assert value(after, "streamsvc_site_connections") == 1
    assert value(after, "streamsvc_monitors_connected") == 1
    assert value(after, "streamsvc_monitor_resyncs_total") == 1
    assert value(after, "streamsvc_monitor_skips_total") == 0
    assert value(after, "process_resident_memory_bytes")
    if database_url.startswith("postgresql"):
        assert value(after, "streamsvc_store_pool_max") == 10
        assert 1 <= value(after, "streamsvc_store_pool_size") <= 10
    else:
        assert value(after, "streamsvc_store_pool_max") is None  # SQLite has no pool

    await device.close()
    await monitor.close()

    async def all_gone() -> bool:
        now = await scrape(client)
        return (
            value(now, "streamsvc_sites_connected") == 0
            and value(now, "streamsvc_monitors_connected") == 0
        )

    await eventually(all_gone, "the site and the monitor to be counted gone")
    # a monitor gone keeps its resync in the instance's count
    assert value(await scrape(client), "streamsvc_monitor_resyncs_total") == 1


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("", "text/plain; version="),
        ("text/plain", "text/plain; version="),
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text"),
    ],
)
async def test_metrics_answers_the_format_prometheus_asks_for(
    aiohttp_client, tmp_path, accept, content_type
):
    app = create_app(Settings(database=f"sqlite:///{tmp_path / 'm.db'}", admin_token=ADMIN))
    client = await aiohttp_client(app)
    r = await client.get("/metrics", headers={"Accept": accept} if accept else {})
    assert r.status == 200
    assert r.headers["Content-Type"].startswith(content_type)
    assert "streamsvc_checkin_events_total" in await r.text()


async def test_each_app_counts_its_own_and_the_bus_carries_lag(
    aiohttp_client, tmp_path, admin_headers
):
    """Two apps in one process (two instances on one bus): counts never mix, the one that
    committed publishes, the other applies, and both measure the lag."""
    settings = Settings(database=f"sqlite:///{tmp_path / 'two.db'}", admin_token=ADMIN)
    bus = MemoryBus()
    apps = []
    for _ in range(2):
        app = create_app(settings)
        app[keys.bus_key] = bus
        apps.append(await aiohttp_client(app))
    a, b = apps
    await seed_roster(a, admin_headers)
    session = await open_session(a, admin_headers)
    site = await add_site(a, admin_headers, session["id"])
    r = await a.post(
        f"/api/v1/sessions/{session['id']}/checkins",
        json={"items": [checkin("10000001"), checkin("10000002")]},
        headers={"Authorization": f"Bearer {site['token']}"},
    )
    assert r.status == 200, await r.text()

    async def applied_on_b() -> bool:
        return (value(await scrape(b), "streamsvc_bus_apply_lag_seconds_count") or 0) >= 1

    await eventually(applied_on_b, "the other instance to apply the commit")
    on_a, on_b = await scrape(a), await scrape(b)
    accepted = {"result": "accepted", "reason": ""}
    assert value(on_a, "streamsvc_checkin_events_total", **accepted) == 2
    assert value(on_b, "streamsvc_checkin_events_total", **accepted) == 0
    assert value(on_a, "streamsvc_bus_published_total") >= 1
    assert value(on_a, "streamsvc_bus_publish_lag_seconds_count") >= 1
    assert value(on_b, "streamsvc_bus_received_total") >= 1
    assert value(on_a, "streamsvc_bus_up") is None  # an in-process bus cannot fail


@pytest.mark.redis
async def test_bus_up_follows_redis(aiohttp_client, tmp_path, redis_prefix):
    def app_on(redis: str, name: str):
        database = f"sqlite:///{tmp_path / name}"
        return create_app(
            Settings(database=database, admin_token=ADMIN, redis=redis, redis_prefix=redis_prefix)
        )

    up = await aiohttp_client(app_on(REDIS_URL, "up.db"))
    assert value(await scrape(up), "streamsvc_bus_up") == 1
    down = await aiohttp_client(app_on("redis://127.0.0.1:1/0", "down.db"))
    assert value(await scrape(down), "streamsvc_bus_up") == 0
