"""/ws/monitor and /live restricted to a scope, through a real server on both stores.

A province P with districts D1 and D2, and another province Q: a D1 viewer's monitor sees D1's
members, sites and units only; the hello's `unit` narrows a view inside the scope and is
refused outside it; a session whose audience misses the scope answers as an unknown one.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from builders import call, seed_scope_roster, signed_in_user
from conftest import ADMIN

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


async def ok(http: aiohttp.ClientSession, path: str, body: Any, status: int) -> Any:
    got, answer = await call(http, "POST", path, ADMIN, body)
    assert got == status, answer
    return answer


async def session(http: aiohttp.ClientSession, audience: list[str]) -> int:
    start = datetime.now(UTC) - timedelta(minutes=10)
    body = {
        "title": "Học tập Nghị quyết",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "audience": audience,
    }
    return int((await ok(http, "/api/v1/sessions", body, 201))["id"])


async def site(http: aiohttp.ClientSession, sid: int, name: str, unit: str | None) -> Any:
    body = {"name": name, "kind": "bridge", "unit": unit, "capacity": None}
    return await ok(http, f"/api/v1/sessions/{sid}/sites", body, 201)


async def checkins(http: aiohttp.ClientSession, sid: int, where: Any, *members: str) -> None:
    now = datetime.now(UTC).isoformat()
    items = [{"type": "checkin", "id": str(uuid.uuid4()), "member": m, "ts": now} for m in members]
    status, answer = await call(
        http, "POST", f"/api/v1/sessions/{sid}/checkins", where["token"], {"items": items}
    )
    assert status == 200 and all(r["result"] == "accepted" for r in answer["results"]), answer


async def guests(http: aiohttp.ClientSession, sid: int, where: Any, count: int) -> None:
    now = datetime.now(UTC).isoformat()
    item = {"type": "guests", "id": str(uuid.uuid4()), "count": count, "ts": now}
    status, answer = await call(
        http, "POST", f"/api/v1/sessions/{sid}/checkins", where["token"], {"items": [item]}
    )
    assert status == 200, answer


async def hello(http: aiohttp.ClientSession, token: str, sid: int, **extra: Any) -> Any:
    ws = await http.ws_connect("/ws/monitor")
    await ws.send_json({"type": "hello", "token": token, "session": sid, **extra})
    return ws


async def refused(http: aiohttp.ClientSession, token: str, sid: int, **extra: Any) -> tuple:
    """(error code, close code) of a hello that is refused."""
    ws = await hello(http, token, sid, **extra)
    message = await asyncio.wait_for(ws.receive_json(), 10)
    assert message["type"] == "error", message
    await asyncio.wait_for(ws.receive(), 10)
    await ws.close()
    return message["code"], ws.close_code


async def until(ws: Any, predicate: Any, live: dict[str, Any]) -> dict[str, Any]:
    """Fold deltas into `live` until it satisfies `predicate`; every delta stays in scope."""
    for _ in range(50):
        if predicate(live):
            return live
        msg = await asyncio.wait_for(ws.receive_json(), 10)
        assert msg["type"] == "delta", msg
        for key in ("present", "unexpected", "guests"):
            live[key] = msg[key]
        for key, name in (("sites", "id"), ("units", "code")):
            changed = {entry[name]: entry for entry in msg[key]}
            assert set(changed) <= {entry[name] for entry in live[key]}, msg
            live[key] = [changed.get(entry[name], entry) for entry in live[key]]
    raise AssertionError(f"never got there: {live}")


async def test_a_district_monitor_sees_only_its_district(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await seed_scope_roster(http, ADMIN_HEADERS)
        sid = await session(http, ["P"])
        d1 = await site(http, sid, "Điểm cầu D1", "D1")
        d2 = await site(http, sid, "Điểm cầu D2", "D2")
        hall = await site(http, sid, "Hội trường", None)
        viewer = await signed_in_user(http, ADMIN_HEADERS, "xem-d1", "D1")

        ws = await hello(http, viewer, sid)
        first = await asyncio.wait_for(ws.receive_json(), 10)
        assert first["type"] == "snapshot"
        live = first["live"]
        assert (live["expected"], live["present"], live["unexpected"]) == (3, 0, 0)
        assert [s["id"] for s in live["sites"]] == [d1["id"]]
        assert [(u["code"], u["parent"]) for u in live["units"]] == [
            ("D1", None),
            ("C11", "D1"),
            ("C12", "D1"),
        ]

        # in D1: A-01 at D1's point; outside: B-01 at D2's, Q-01 (unexpected, of Q) at D1's
        await checkins(http, sid, d1, "A-01", "Q-01")
        await checkins(http, sid, d2, "B-01")
        await checkins(http, sid, hall, "A-02")
        await guests(http, sid, d1, 5)
        await guests(http, sid, d2, 7)
        await guests(http, sid, hall, 40)
        live = await until(ws, lambda x: x["present"] == 2 and x["guests"] == 5, live)
        assert live["unexpected"] == 0
        assert {u["code"]: u["present"] for u in live["units"]} == {"D1": 2, "C11": 2, "C12": 0}

        status, http_live = await call(http, "GET", f"/api/v1/sessions/{sid}/live", viewer)
        assert status == 200
        assert {k: http_live[k] for k in ("expected", "present", "unexpected", "guests")} == {
            "expected": 3,
            "present": 2,
            "unexpected": 0,
            "guests": 5,
        }
        status, whole = await call(http, "GET", f"/api/v1/sessions/{sid}/live", ADMIN)
        assert (whole["present"], whole["unexpected"], whole["guests"]) == (3, 1, 52)

        # a session for D1's cells alone: A-03 of C12 comes unexpected, and D1 sees it
        other = await session(http, ["C11"])
        there = await site(http, other, "Điểm cầu C11", "C11")
        ws2 = await hello(http, viewer, other)
        snap = (await asyncio.wait_for(ws2.receive_json(), 10))["live"]
        await checkins(http, other, there, "A-03", "Q-01")
        snap = await until(ws2, lambda x: x["unexpected"] == 1, snap)
        assert snap["present"] == 0
        await ws2.close()
        await ws.close()


async def test_the_hello_unit_narrows_inside_the_scope_only(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await seed_scope_roster(http, ADMIN_HEADERS)
        sid = await session(http, ["P"])
        for_d2 = await session(http, ["D2"])
        where = await site(http, sid, "Điểm cầu C11", "C11")
        viewer = await signed_in_user(http, ADMIN_HEADERS, "xem-d1", "D1")

        for token in (ADMIN, viewer):
            ws = await hello(http, token, sid, unit="C11")
            live = (await asyncio.wait_for(ws.receive_json(), 10))["live"]
            assert live["expected"] == 2
            assert [u["code"] for u in live["units"]] == ["C11"]
            assert [s["id"] for s in live["sites"]] == [where["id"]]
            await ws.close()
        status, live = await call(http, "GET", f"/api/v1/sessions/{sid}/live?unit=C12", viewer)
        assert status == 200 and live["expected"] == 1

        assert await refused(http, viewer, sid, unit="D2") == ("forbidden", 4403)
        assert await refused(http, viewer, sid, unit="NOPE") == ("forbidden", 4403)
        status, body = await call(http, "GET", f"/api/v1/sessions/{sid}/live?unit=D2", viewer)
        assert (status, body["error"]["code"]) == (403, "forbidden")

        # a session whose audience misses the scope is an unknown one, word for word
        hidden = await refused(http, viewer, for_d2)
        assert hidden == await refused(http, viewer, 999_999) == ("not_found", 4404)
        assert await refused(http, ADMIN, for_d2, unit="C11") == ("not_found", 4404)
        status, body = await call(http, "GET", f"/api/v1/sessions/{for_d2}/live", viewer)
        _status, unknown = await call(http, "GET", "/api/v1/sessions/999999/live", viewer)
        assert status == 404 and body["error"]["code"] == unknown["error"]["code"]

        # a site token, or no valid token at all: unauthorized
        assert await refused(http, where["token"], sid) == ("unauthorized", 4401)
        assert await refused(http, "not-a-token", sid) == ("unauthorized", 4401)


async def test_signing_out_closes_the_monitor(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await seed_scope_roster(http, ADMIN_HEADERS)
        sid = await session(http, ["P"])
        viewer = await signed_in_user(http, ADMIN_HEADERS, "xem-d1", "D1")
        ws = await hello(http, viewer, sid)
        assert (await asyncio.wait_for(ws.receive_json(), 10))["type"] == "snapshot"
        status, _ = await call(http, "POST", "/api/v1/auth/logout", viewer)
        assert status in (200, 204)
        message = await asyncio.wait_for(ws.receive_json(), 10)
        assert message["code"] == "unauthorized"
        await asyncio.wait_for(ws.receive(), 10)
        assert ws.close_code == 4401


async def test_a_scoped_monitor_on_another_instance_counts_what_this_one_stored(
    aiohttp_client, settings
):
    """Events reach the other instance over the bus without their members' units; it reads
    an unexpected member's unit itself, and its scoped monitor counts them."""
    from streamsvc.bus import MemoryBus
    from streamsvc.web import keys
    from streamsvc.web.app import create_app

    bus = MemoryBus()
    apps = []
    for _ in range(2):
        app = create_app(settings)
        app[keys.bus_key] = bus
        apps.append(await aiohttp_client(app))
    a, b = apps
    await seed_scope_roster(a, ADMIN_HEADERS)
    start = datetime.now(UTC) - timedelta(minutes=10)
    r = await a.post(
        "/api/v1/sessions",
        json={
            "title": "Học tập",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            "audience": ["C11"],
        },
        headers=ADMIN_HEADERS,
    )
    sid = (await r.json())["id"]
    r = await a.post(
        f"/api/v1/sessions/{sid}/sites",
        json={"name": "Điểm cầu C11", "kind": "bridge", "unit": "C11", "capacity": None},
        headers=ADMIN_HEADERS,
    )
    where = await r.json()

    ws = await b.ws_connect("/ws/monitor")
    await ws.send_json({"type": "hello", "token": ADMIN, "session": sid, "unit": "D1"})
    live = (await asyncio.wait_for(ws.receive_json(), 10))["live"]
    assert (live["expected"], live["present"], live["unexpected"]) == (2, 0, 0)
    now = datetime.now(UTC).isoformat()
    items = [
        {"type": "checkin", "id": str(uuid.uuid4()), "member": m, "ts": now}
        for m in ("A-01", "A-03", "B-01")  # expected; unexpected in D1; unexpected outside
    ]
    r = await a.post(
        f"/api/v1/sessions/{sid}/checkins",
        json={"items": items},
        headers={"Authorization": f"Bearer {where['token']}"},
    )
    assert r.status == 200
    live = await until(ws, lambda x: x["present"] == 1 and x["unexpected"] == 1, live)
    r = await b.get(f"/api/v1/sessions/{sid}/live", headers=ADMIN_HEADERS)
    whole = await r.json()
    assert (whole["present"], whole["unexpected"]) == (1, 2)
    await ws.close()
