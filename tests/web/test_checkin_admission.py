"""A crowd of devices connecting at once (`services.admission`): past the instance's rate a
device is told `503 busy` with Retry-After before any websocket is made, and the sites
already in go on checking in; the refusals are counted in /metrics."""

from __future__ import annotations

import aiohttp
import pytest
from builders import add_site, checkin, open_session, seed_roster

from streamsvc.web import keys


@pytest.fixture
async def site(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["DB1"])
    return await add_site(client, admin_headers, session["id"], name="Điểm cầu Ba Bể")


async def hello(client, token: str):
    ws = await client.ws_connect("/ws/checkin")
    await ws.send_json({"type": "hello", "token": token, "client": "test-device"})
    assert (await ws.receive_json())["type"] == "welcome"
    return ws


async def test_the_admission_rate_is_the_setting(client, settings):
    assert client.app[keys.admission_key].rate == settings.connect_rate == 500


async def test_past_the_rate_a_device_is_told_busy_and_the_sites_in_go_on(client, site):
    # two at once, then (practically) none: the third is refused however slow the machine
    admission = client.app[keys.admission_key]
    admission.rate, admission.tokens = 0.001, 2.0
    first = await hello(client, site["token"])
    second = await hello(client, site["token"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/checkin")
    assert refused.value.status == 503
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 30
    # the answer is the contract's error shape (read as plain HTTP: no upgrade happens)
    r = await client.get("/ws/checkin")
    assert r.status == 503
    assert (await r.json())["error"]["code"] == "busy"
    for ws, member in ((first, "10000001"), (second, "10000002")):
        await ws.send_json(checkin(member))
        assert (await ws.receive_json())["results"][0]["result"] == "accepted"
        await ws.close()
    metrics = await (await client.get("/metrics")).text()
    assert "streamsvc_connections_refused_total 2.0" in metrics


async def test_nobody_is_let_in_while_the_commits_are_behind(client, site):
    backlog = {"frames": 5000}
    admission = client.app[keys.admission_key]
    admission.backlog, admission.backlog_limit = lambda: backlog["frames"], 2000
    r = await client.get("/ws/checkin")
    assert r.status == 503
    backlog["frames"] = 0
    ws = await hello(client, site["token"])
    await ws.close()
