"""Two real instances on one PostgreSQL and one Redis, behind nginx when the machine has it:
check-ins on one show on a monitor of the other; a restarted instance shows the same numbers."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import aiohttp
import pytest
from builders import MEMBERS, UNITS, checkin, iso, now
from conftest import ADMIN, REDIS_URL
from instances_harness import running_instances, trial

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def cluster(tmp_path, redis_prefix, monkeypatch):
    """Two instances (and nginx in front when installed)."""
    async with running_instances(tmp_path, redis_prefix, monkeypatch, nginx="if_installed") as c:
        yield c


async def setup_session(http: aiohttp.ClientSession, base: str) -> tuple[int, dict]:
    async def post(path: str, body: dict, status: int = 200) -> dict:
        async with http.post(base + path, json=body, headers=AUTH) as r:
            assert r.status == status, await r.text()
            return await r.json()

    await post("/api/v1/units", {"units": UNITS})
    await post("/api/v1/members", {"members": MEMBERS})
    from datetime import timedelta

    session = await post(
        "/api/v1/sessions",
        {
            "title": "Hai máy chủ",
            "starts_at": iso(now() - timedelta(minutes=10)),
            "ends_at": iso(now() + timedelta(hours=1)),
            "audience": ["TU"],
        },
        201,
    )
    site = await post(
        f"/api/v1/sessions/{session['id']}/sites",
        {"name": "Hội trường", "kind": "hall", "unit": None, "capacity": None},
        201,
    )
    return session["id"], site


async def wait_for(ws: aiohttp.ClientWebSocketResponse, predicate) -> dict:
    async def loop() -> dict:
        while True:
            msg = json.loads((await ws.receive()).data)
            live = msg.get("live", msg)
            if predicate(live):
                return live

    return await asyncio.wait_for(loop(), 15)


async def test_checkins_on_one_instance_show_on_a_monitor_of_the_other(cluster):
    a, b = cluster.urls
    front = cluster.proxy or a
    async with aiohttp.ClientSession() as http:
        sid, site = await setup_session(http, front)
        monitor = await http.ws_connect(b.replace("http", "ws") + "/ws/monitor")
        await monitor.send_json({"type": "hello", "token": ADMIN, "session": sid})
        first = await wait_for(monitor, lambda live: True)
        assert (first["expected"], first["present"]) == (6, 0)

        device = await http.ws_connect(a.replace("http", "ws") + "/ws/checkin")
        await device.send_json({"type": "hello", "token": site["token"], "client": "a"})
        assert (await device.receive_json())["type"] == "welcome"
        await wait_for(monitor, lambda live: any(s.get("connected") for s in live.get("sites", [])))
        await device.send_json(
            {"type": "batch", "items": [checkin("10000001"), checkin("10000004")]}
        )
        assert [r["result"] for r in (await device.receive_json())["results"]] == ["accepted"] * 2
        seen = await wait_for(monitor, lambda live: live.get("present") == 2)
        assert {u["code"]: u["present"] for u in seen["units"]}["TU"] == 2

        # through the proxy too: nginx carries the check-in websocket
        through = await http.ws_connect(front.replace("http", "ws") + "/ws/checkin")
        await through.send_json({"type": "hello", "token": site["token"], "client": "p"})
        await through.receive_json()
        await through.send_json(checkin("10000006"))
        assert (await through.receive_json())["results"][0]["result"] == "accepted"
        await wait_for(monitor, lambda live: live.get("present") == 3)
        for ws in (device, through, monitor):
            await ws.close()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stop", "kill-9"])
async def test_a_restarted_instance_shows_the_same_numbers(cluster, how):
    a, _ = cluster.urls
    async with aiohttp.ClientSession() as http:
        sid, site = await setup_session(http, a)
        items = [checkin(m["code"]) for m in MEMBERS[:4]] + [checkin("77777777")]
        items.append({"type": "guests", "id": str(uuid.uuid4()), "count": 9, "ts": iso(now())})
        async with http.post(
            f"{a}/api/v1/sessions/{sid}/checkins",
            json={"items": items},
            headers={"Authorization": f"Bearer {site['token']}"},
        ) as r:
            assert r.status == 200
        async with http.get(f"{a}/api/v1/sessions/{sid}/live", headers=AUTH) as r:
            before = await r.json()
        assert (before["present"], before["guests"]) == (4, 9)

        port, proc = cluster.instances[0]
        proc.send_signal(how)
        await asyncio.to_thread(proc.wait, 15)
        again = trial.start_instance(
            port, cluster.database, REDIS_URL, ADMIN, cluster.logs / "again.log"
        )
        cluster.instances[0] = (port, again)
        try:
            await asyncio.to_thread(trial.wait_healthy, a)
            async with http.get(f"{a}/api/v1/sessions/{sid}/live", headers=AUTH) as r:
                after = await r.json()
        finally:
            again.terminate()
            again.wait(10)
    for entry in (before, after):
        for s in entry["sites"]:
            s.pop("connected")
    assert after == before
