"""A session's `expected` restricted to the caller's scope, through a real server on both
stores: a district viewer of a province session sees its district's members in the list and
in the session itself, before and after the close; the admin token sees the whole audience.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from builders import call, seed_scope_roster, signed_in_user
from conftest import ADMIN

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


async def ok(http: aiohttp.ClientSession, path: str, body: Any, token: str = ADMIN) -> Any:
    status, answer = await call(http, "POST", path, token, body)
    assert status in (200, 201), answer
    return answer


def planned(audience: list[str]) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(minutes=10)
    return {
        "title": "Học tập Nghị quyết",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "audience": audience,
    }


async def expected(http: aiohttp.ClientSession, token: str) -> dict[int, int]:
    """`expected` of each session in the list, by id; each one read alone agrees."""
    status, body = await call(http, "GET", "/api/v1/sessions", token)
    assert status == 200, body
    listed = {s["id"]: s["expected"] for s in body["sessions"]}
    for sid, count in listed.items():
        status, one = await call(http, "GET", f"/api/v1/sessions/{sid}", token)
        assert (status, one["expected"]) == (200, count), one
    return listed


async def test_a_district_viewer_sees_its_districts_expected_members(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await seed_scope_roster(http, ADMIN_HEADERS)
        province = (await ok(http, "/api/v1/sessions", planned(["P"])))["id"]
        other = (await ok(http, "/api/v1/sessions", planned(["Q"])))["id"]
        district = (await ok(http, "/api/v1/sessions", planned(["D1", "CQ"])))["id"]
        d1 = await signed_in_user(http, ADMIN_HEADERS, "xem-d1", "D1", "viewer")
        c11 = await signed_in_user(http, ADMIN_HEADERS, "xem-c11", "C11", "viewer")

        assert await expected(http, ADMIN) == {province: 5, other: 1, district: 4}
        assert await expected(http, d1) == {province: 3, district: 3}
        assert await expected(http, c11) == {province: 2, district: 2}

        # closed: the frozen list, still counted within the scope
        closed = await ok(http, f"/api/v1/sessions/{province}/close", None)
        assert closed["expected"] == 5
        assert (await expected(http, d1))[province] == 3
        assert (await expected(http, ADMIN))[province] == 5


async def test_an_organizers_created_and_closed_session_count_its_scope(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await seed_scope_roster(http, ADMIN_HEADERS)
        organizer = await signed_in_user(http, ADMIN_HEADERS, "to-chuc-d1", "D1", "organizer")
        created = await ok(http, "/api/v1/sessions", planned(["C11", "C12"]), organizer)
        assert created["expected"] == 3
        # A-03 leaves for D2 after the close: the frozen list keeps them, D1's count does not
        closed = await ok(http, f"/api/v1/sessions/{created['id']}/close", None, organizer)
        assert closed["expected"] == 3
        moved = {"code": "A-03", "full_name": "Nông Văn Cường", "unit": "C21"}
        await ok(http, "/api/v1/members", {"members": [moved]})
        assert await expected(http, organizer) == {created["id"]: 2}
        assert await expected(http, ADMIN) == {created["id"]: 3}
