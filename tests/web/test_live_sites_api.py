"""Dashboards at scale through a real server on both stores: LIVE with `sites` none and a
`depth` (the monitor's hello and `/live`'s query), and the per-site table read page by page
from `GET /api/v1/sessions/{sid}/live/sites`, filtered and restricted to the caller's scope.

Province P with districts D1 (cells C11, C12) and D2 (cell C21), and province Q (cell CQ);
the session's audience is both provinces.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from conftest import ADMIN

UNITS = [
    {"code": "P", "name": "Tỉnh ủy Bắc Kạn", "parent": None},
    {"code": "D1", "name": "Đảng bộ huyện Bạch Thông", "parent": "P"},
    {"code": "C11", "name": "Chi bộ xã Quân Hà", "parent": "D1"},
    {"code": "C12", "name": "Chi bộ xã Cẩm Giàng", "parent": "D1"},
    {"code": "D2", "name": "Đảng bộ huyện Chợ Mới", "parent": "P"},
    {"code": "C21", "name": "Chi bộ xã Yên Đĩnh", "parent": "D2"},
    {"code": "Q", "name": "Tỉnh ủy Thái Nguyên", "parent": None},
    {"code": "CQ", "name": "Chi bộ phường Phan Đình Phùng", "parent": "Q"},
]
MEMBERS = [
    {"code": "A-01", "full_name": "Nguyễn Văn An", "unit": "C11"},
    {"code": "A-02", "full_name": "Hoàng Thị Bình", "unit": "C11"},
    {"code": "A-03", "full_name": "Nông Văn Cường", "unit": "C12"},
    {"code": "B-01", "full_name": "Ma Thị Phượng", "unit": "C21"},
    {"code": "Q-01", "full_name": "Lục Văn Long", "unit": "CQ"},
]
# (name, kind, unit): a few per unit, one with none (seen by the whole tree only)
SITES = [
    ("Điểm cầu huyện Bạch Thông", "bridge", "D1"),
    ("Điểm xem xã Quân Hà", "broadcast", "C11"),
    ("Tự học xã Quân Hà", "self_study", "C11"),
    ("Điểm cầu xã Cẩm Giàng", "bridge", "C12"),
    ("Hội trường huyện Chợ Mới", "hall", "D2"),
    ("Điểm xem xã Yên Đĩnh", "broadcast", "C21"),
    ("Điểm cầu phường Phan Đình Phùng", "bridge", "CQ"),
    ("Hội trường Trung ương", "hall", None),
]
PASSWORD = "mật-khẩu-đủ-dài-123"
TOTALS = ("expected", "present", "unexpected", "guests")


async def call(
    http: aiohttp.ClientSession, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, path, json=body, headers=headers) as resp:
        if resp.content_type != "application/json":
            return resp.status, None
        return resp.status, await resp.json()


async def ok(http: aiohttp.ClientSession, path: str, body: Any, status: int) -> Any:
    got, answer = await call(http, "POST", path, ADMIN, body)
    assert got == status, answer
    return answer


async def get(http: aiohttp.ClientSession, path: str, token: str = ADMIN) -> Any:
    status, answer = await call(http, "GET", path, token)
    assert status == 200, (path, answer)
    return answer


async def setup(http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
    """The session and its sites by name."""
    await ok(http, "/api/v1/units", {"units": UNITS}, 200)
    await ok(http, "/api/v1/members", {"members": MEMBERS}, 200)
    start = datetime.now(UTC) - timedelta(minutes=10)
    body = {
        "title": "Học tập Nghị quyết",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "audience": ["P", "Q"],
    }
    sid = int((await ok(http, "/api/v1/sessions", body, 201))["id"])
    rows = [{"name": n, "kind": k, "unit": u, "capacity": None} for n, k, u in SITES]
    made = await ok(http, f"/api/v1/sessions/{sid}/sites", {"sites": rows}, 201)
    return sid, {site["name"]: site for site in made["sites"]}


async def checkins(http: aiohttp.ClientSession, sid: int, where: Any, *members: str) -> None:
    now = datetime.now(UTC).isoformat()
    items = [{"type": "checkin", "id": str(uuid.uuid4()), "member": m, "ts": now} for m in members]
    status, answer = await call(
        http, "POST", f"/api/v1/sessions/{sid}/checkins", where["token"], {"items": items}
    )
    assert status == 200 and all(r["result"] == "accepted" for r in answer["results"]), answer


async def sign_in(http: aiohttp.ClientSession, login: str, unit: str) -> str:
    user = {"login": login, "full_name": "Người xem", "unit": unit, "role": "viewer"}
    await ok(http, "/api/v1/users", {**user, "password": PASSWORD}, 201)
    status, body = await call(
        http, "POST", "/api/v1/auth/login", "", {"login": login, "password": PASSWORD}
    )
    assert status == 200, body
    return str(body["token"])


def names(answer: dict[str, Any]) -> list[str]:
    return [site["name"] for site in answer["sites"]]


def units(live: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(unit["code"], unit["parent"]) for unit in live["units"]]


async def monitor(http: aiohttp.ClientSession, sid: int, **extra: Any) -> tuple[Any, Any]:
    ws = await http.ws_connect("/ws/monitor")
    await ws.send_json({"type": "hello", "token": ADMIN, "session": sid, **extra})
    first = await asyncio.wait_for(ws.receive_json(), 10)
    assert first["type"] == "snapshot", first
    return ws, first["live"]


async def next_delta(ws: Any) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive_json(), 10)
    assert msg["type"] == "delta", msg
    return dict(msg)


async def test_live_with_sites_none_and_a_depth_over_http(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        sid, sites = await setup(http)
        await checkins(http, sid, sites["Điểm xem xã Quân Hà"], "A-01", "A-02")
        await checkins(http, sid, sites["Điểm cầu phường Phan Đình Phùng"], "Q-01")
        live = f"/api/v1/sessions/{sid}/live"

        full = await get(http, live)
        slim = await get(http, f"{live}?sites=none&depth=1")
        assert len(full["sites"]) == len(SITES) and slim["sites"] == []
        assert {k: slim[k] for k in TOTALS} == {k: full[k] for k in TOTALS}
        assert {k: slim[k] for k in TOTALS} == {
            "expected": 5,
            "present": 3,
            "unexpected": 0,
            "guests": 0,
        }
        assert units(slim) == [("P", None), ("D1", "P"), ("D2", "P"), ("Q", None), ("CQ", "Q")]
        assert units(await get(http, f"{live}?depth=0")) == [("P", None), ("Q", None)]
        assert slim["curve"] == full["curve"] != []

        # within a unit: its depth 0 is itself, and sites stay unless asked away
        d1 = await get(http, f"{live}?unit=D1&depth=0")
        assert units(d1) == [("D1", None)]
        assert d1["present"] == 2 and len(d1["sites"]) == 4
        assert (await get(http, f"{live}?unit=D1&depth=1&sites=all"))["units"][1]["present"] == 2

        for query, field in (("sites=some", "sites"), ("depth=-1", "depth"), ("depth=x", "depth")):
            status, answer = await call(http, "GET", f"{live}?{query}", ADMIN)
            assert (status, answer["error"]["code"], answer["error"]["details"]) == (
                400,
                "invalid",
                {"field": field},
            )

        # a viewer of D1: the options within the scope
        viewer = await sign_in(http, "xem-d1", "D1")
        mine = await get(http, f"{live}?sites=none&depth=1", viewer)
        assert mine["sites"] == [] and units(mine) == [("D1", None), ("C11", "D1"), ("C12", "D1")]
        assert (mine["expected"], mine["present"]) == (3, 2)


async def test_the_sites_page_filters_orders_pages_and_keeps_to_the_scope(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        sid, sites = await setup(http)
        await checkins(http, sid, sites["Điểm xem xã Quân Hà"], "A-01", "A-02")
        await checkins(http, sid, sites["Hội trường huyện Chợ Mới"], "B-01")
        path = f"/api/v1/sessions/{sid}/live/sites"

        every = await get(http, path)
        assert every["total"] == len(SITES)
        headers = {"Authorization": f"Bearer {ADMIN}", "Accept-Encoding": "gzip"}
        for url in (path, f"/api/v1/sessions/{sid}/live?sites=none"):
            async with http.get(url, headers=headers) as resp:
                assert resp.headers.get("Content-Encoding") == "gzip", url
        assert names(every) == [  # by name, accents folded
            "Điểm cầu huyện Bạch Thông",
            "Điểm cầu phường Phan Đình Phùng",
            "Điểm cầu xã Cẩm Giàng",
            "Điểm xem xã Quân Hà",
            "Điểm xem xã Yên Đĩnh",
            "Hội trường huyện Chợ Mới",
            "Hội trường Trung ương",
            "Tự học xã Quân Hà",
        ]
        first = next(s for s in every["sites"] if s["name"] == "Điểm xem xã Quân Hà")
        assert first == {
            "id": sites["Điểm xem xã Quân Hà"]["id"],
            "name": "Điểm xem xã Quân Hà",
            "kind": "broadcast",
            "unit": "C11",
            "capacity": None,
            "present": 2,
            "guests": 0,
            "connected": False,
            "last_event_at": first["last_event_at"],
        }
        assert first["last_event_at"] is not None

        assert names(await get(http, f"{path}?unit=C11")) == [
            "Điểm xem xã Quân Hà",
            "Tự học xã Quân Hà",
        ]
        assert (await get(http, f"{path}?unit=D1"))["total"] == 4
        assert names(await get(http, f"{path}?kind=hall")) == [
            "Hội trường huyện Chợ Mới",
            "Hội trường Trung ương",
        ]
        assert names(await get(http, f"{path}?q=quan%20ha&kind=self_study")) == [
            "Tự học xã Quân Hà"
        ]
        assert (await get(http, f"{path}?q=DINH"))["total"] == 2  # Đình, Đĩnh
        top = await get(http, f"{path}?order=present&limit=2")
        assert names(top) == ["Điểm xem xã Quân Hà", "Hội trường huyện Chợ Mới"]
        assert top["total"] == len(SITES)
        quiet = await get(http, f"{path}?order=last_event_at")
        assert names(quiet)[-2:] == ["Điểm xem xã Quân Hà", "Hội trường huyện Chợ Mới"]
        pages = [await get(http, f"{path}?limit=3&offset={n}") for n in (0, 3, 6)]
        assert [len(p["sites"]) for p in pages] == [3, 3, 2]
        assert [name for p in pages for name in names(p)] == names(every)

        # silent: no coordinator connected; a device's hello makes one site not silent
        assert (await get(http, f"{path}?silent=true"))["total"] == len(SITES)
        device = await http.ws_connect("/ws/checkin")
        token = sites["Điểm cầu xã Cẩm Giàng"]["token"]
        await device.send_json({"type": "hello", "token": token, "client": "phone-1"})
        assert (await asyncio.wait_for(device.receive_json(), 10))["type"] == "welcome"
        for _ in range(50):
            talking = await get(http, f"{path}?silent=false")
            if talking["total"]:
                break
            await asyncio.sleep(0.1)
        assert names(talking) == ["Điểm cầu xã Cẩm Giàng"]
        assert talking["sites"][0]["connected"] is True
        assert (await get(http, f"{path}?silent=true"))["total"] == len(SITES) - 1
        await device.close()

        for query, field in (
            ("limit=1001", "limit"),
            ("limit=0", "limit"),
            ("offset=-1", "offset"),
            ("order=guests", "order"),
            ("kind=stadium", "kind"),
            ("silent=maybe", "silent"),
        ):
            status, answer = await call(http, "GET", f"{path}?{query}", ADMIN)
            assert (status, answer["error"]["code"], answer["error"]["details"]) == (
                400,
                "invalid",
                {"field": field},
            )
        assert len((await get(http, f"{path}?limit=1000"))["sites"]) == len(SITES)

        # a viewer of D1 sees D1's sites only, not one without a unit; outside D1 is forbidden
        viewer = await sign_in(http, "xem-d1", "D1")
        mine = await get(http, path, viewer)
        assert mine["total"] == 4
        assert all(s["unit"] in ("D1", "C11", "C12") for s in mine["sites"])
        assert (await get(http, f"{path}?q=trung%20uong", viewer))["total"] == 0
        status, answer = await call(http, "GET", f"{path}?unit=D2", viewer)
        assert (status, answer["error"]["code"]) == (403, "forbidden")
        status, answer = await call(http, "GET", path, "")
        assert status == 401
        status, answer = await call(http, "GET", "/api/v1/sessions/999999/live/sites", ADMIN)
        assert (status, answer["error"]["code"]) == (404, "unknown_session")
        # a session whose audience misses the viewer's scope answers as an unknown one
        start = datetime.now(UTC)
        body = {
            "title": "Riêng tỉnh Q",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "audience": ["Q"],
        }
        other = (await ok(http, "/api/v1/sessions", body, 201))["id"]
        status, answer = await call(http, "GET", f"/api/v1/sessions/{other}/live/sites", viewer)
        assert (status, answer["error"]["code"]) == (404, "unknown_session")


async def test_monitors_with_sites_none_and_a_depth_share_slim_deltas(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        sid, sites = await setup(http)
        # a bad option is a bad message, and the socket waits for a good hello
        ws = await http.ws_connect("/ws/monitor")
        for extra in ({"sites": "few"}, {"depth": "1"}, {"depth": -2}, {"depth": True}):
            await ws.send_json({"type": "hello", "token": ADMIN, "session": sid, **extra})
            error = await asyncio.wait_for(ws.receive_json(), 10)
            assert (error["type"], error["code"]) == ("error", "bad_message"), error
        await ws.send_json({"type": "hello", "token": ADMIN, "session": sid, "sites": "none"})
        first = await asyncio.wait_for(ws.receive_json(), 10)
        assert first["type"] == "snapshot" and first["live"]["sites"] == []
        await ws.close()

        slim, slim_live = await monitor(http, sid, sites="none", depth=1)
        also, also_live = await monitor(http, sid, sites="none", depth=1)
        full, full_live = await monitor(http, sid)
        d1, d1_live = await monitor(http, sid, unit="D1", sites="none", depth=0)
        assert slim_live == also_live
        assert slim_live["sites"] == [] and len(full_live["sites"]) == len(SITES)
        assert units(slim_live) == [
            ("P", None),
            ("D1", "P"),
            ("D2", "P"),
            ("Q", None),
            ("CQ", "Q"),
        ]
        assert units(d1_live) == [("D1", None)] and d1_live["sites"] == []

        await checkins(http, sid, sites["Điểm xem xã Quân Hà"], "A-01")
        delta = await next_delta(slim)
        assert (delta["present"], delta["sites"]) == (1, [])
        assert [(u["code"], u["present"]) for u in delta["units"]] == [("P", 1), ("D1", 1)]
        assert delta["curve"] != []
        assert await next_delta(also) == delta  # one delta for the group, the same bytes
        wide = await next_delta(full)
        assert [s["name"] for s in wide["sites"]] == ["Điểm xem xã Quân Hà"]
        assert {u["code"] for u in wide["units"]} == {"P", "D1", "C11"}
        narrow = await next_delta(d1)
        assert (narrow["present"], narrow["sites"], narrow["curve"]) == (1, [], [])
        assert [(u["code"], u["present"]) for u in narrow["units"]] == [("D1", 1)]

        # a second check-in of someone present changes a site only: the slim monitors get no
        # delta for the units, only the curve moves; a resync gives a slim snapshot again
        await checkins(http, sid, sites["Điểm cầu xã Cẩm Giàng"], "A-01")
        wide = await next_delta(full)
        assert [s["name"] for s in wide["sites"]] == ["Điểm cầu xã Cẩm Giàng"]
        delta = await next_delta(slim)
        assert (delta["sites"], delta["units"]) == ([], [])
        await slim.send_json({"type": "resync"})
        again = await asyncio.wait_for(slim.receive_json(), 10)
        assert again["type"] == "snapshot" and again["live"]["sites"] == []
        assert again["live"]["present"] == 1 and len(again["live"]["units"]) == 5
        for ws in (slim, also, full, d1):
            await ws.close()
