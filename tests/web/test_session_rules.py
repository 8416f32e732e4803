"""A session's `requires` and `plans` over HTTP, through a real server on both stores: taken
on create and shown on every session answer (old-style bodies read as nothing required and
no plans), changed later by `PATCH /api/v1/sessions/{sid}` (organizer of the whole audience,
even after the close; audit `session_changed`), and every bad value a 400 naming its field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from conftest import ADMIN

UNITS = [
    {"code": "P", "name": "Tỉnh ủy Bắc Kạn", "parent": None},
    {"code": "D1", "name": "Đảng bộ huyện Bạch Thông", "parent": "P"},
    {"code": "C11", "name": "Chi bộ xã Quân Hà", "parent": "D1"},
    {"code": "D2", "name": "Đảng bộ huyện Chợ Mới", "parent": "P"},
]
MEMBERS = [
    {"code": "A-01", "full_name": "Nguyễn Văn An", "unit": "C11"},
    {"code": "B-01", "full_name": "Ma Thị Phượng", "unit": "D2"},
]
PASSWORD = "mật-khẩu-đủ-dài-123"
NOTHING = {"reflection": False, "quiz_pass": None, "quiz_max": 100.0}


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, token: str = ADMIN
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, path, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def ok(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, token: str = ADMIN
) -> Any:
    status, answer = await call(http, method, path, body, token)
    assert status in (200, 201), answer
    return answer


def planned(audience: list[str], **extra: Any) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(minutes=10)
    return {
        "title": "Học tập Nghị quyết",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "audience": audience,
        **extra,
    }


async def sign_in(http: aiohttp.ClientSession, login: str, unit: str, role: str) -> str:
    user = {"login": login, "full_name": "Người dùng", "unit": unit, "role": role}
    await ok(http, "POST", "/api/v1/users", {**user, "password": PASSWORD})
    body = await ok(http, "POST", "/api/v1/auth/login", {"login": login, "password": PASSWORD}, "")
    return str(body["token"])


async def roster(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", "/api/v1/units", {"units": UNITS})
    await ok(http, "POST", "/api/v1/members", {"members": MEMBERS})


async def test_requires_and_plans_are_taken_on_create_and_shown_everywhere(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await roster(http)
        plain = await ok(http, "POST", "/api/v1/sessions", planned(["P"]))
        assert (plain["requires"], plain["plans"]) == (NOTHING, None)
        explicit_nulls = await ok(
            http, "POST", "/api/v1/sessions", planned(["P"], requires=None, plans=None)
        )
        assert (explicit_nulls["requires"], explicit_nulls["plans"]) == (NOTHING, None)

        rules = {"reflection": True, "quiz_pass": 8, "quiz_max": 10}
        plans = {"depth": 2, "heads": True, "due": "2026-06-30T17:00:00+07:00"}
        strict = await ok(
            http, "POST", "/api/v1/sessions", planned(["D1"], requires=rules, plans=plans)
        )
        want_rules = {"reflection": True, "quiz_pass": 8.0, "quiz_max": 10.0}
        want_plans = {"depth": 2, "heads": True, "due": "2026-06-30T10:00:00Z"}
        assert (strict["requires"], strict["plans"]) == (want_rules, want_plans)
        # left out: the defaults
        partial = await ok(
            http,
            "POST",
            "/api/v1/sessions",
            planned(["P"], requires={"quiz_pass": 50}, plans={"depth": 1}),
        )
        assert partial["requires"] == {**NOTHING, "quiz_pass": 50.0}
        assert partial["plans"] == {"depth": 1, "heads": False, "due": None}

        one = await ok(http, "GET", f"/api/v1/sessions/{strict['id']}")
        assert (one["requires"], one["plans"]) == (want_rules, want_plans)
        listed = {s["id"]: s for s in (await ok(http, "GET", "/api/v1/sessions"))["sessions"]}
        assert listed[strict["id"]]["plans"] == want_plans
        assert listed[plain["id"]]["plans"] is None


BAD: list[tuple[dict[str, Any], str]] = [
    ({"requires": []}, "requires"),
    ({"requires": {"reflection": "có"}}, "requires.reflection"),
    ({"requires": {"reflection": 1}}, "requires.reflection"),
    ({"requires": {"quiz_pass": "8"}}, "requires.quiz_pass"),
    ({"requires": {"quiz_pass": True}}, "requires.quiz_pass"),
    ({"requires": {"quiz_pass": -1}}, "requires.quiz_pass"),
    ({"requires": {"quiz_pass": 11, "quiz_max": 10}}, "requires.quiz_pass"),
    ({"requires": {"quiz_pass": 101}}, "requires.quiz_pass"),
    ({"requires": {"quiz_max": 0}}, "requires.quiz_max"),
    ({"requires": {"quiz_max": None}}, "requires.quiz_max"),
    ({"requires": {"quiz_max": 1e9}}, "requires.quiz_max"),
    ({"plans": "grassroots"}, "plans"),
    ({"plans": {}}, "plans.depth"),
    ({"plans": {"depth": -1}}, "plans.depth"),
    ({"plans": {"depth": 1.5}}, "plans.depth"),
    ({"plans": {"depth": True}}, "plans.depth"),
    ({"plans": {"depth": 2, "heads": "yes"}}, "plans.heads"),
    ({"plans": {"depth": 2, "due": "30/06/2026"}}, "plans.due"),
    ({"plans": {"depth": 2, "due": "2026-06-30T17:00:00"}}, "plans.due"),
]


async def test_bad_requirements_and_plan_rules_name_their_field(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await roster(http)
        sid = (await ok(http, "POST", "/api/v1/sessions", planned(["P"])))["id"]
        for extra, field in BAD:
            status, body = await call(http, "POST", "/api/v1/sessions", planned(["P"], **extra))
            assert (status, body["error"]["code"]) == (400, "invalid"), (extra, body)
            assert body["error"]["details"] == {"field": field}, (extra, body)
            status, body = await call(http, "PATCH", f"/api/v1/sessions/{sid}", extra)
            assert (status, body["error"]["details"]) == (400, {"field": field}), (extra, body)
        # PATCH changes requires and plans only, and something
        for body, field in [
            ({"title": "Khác"}, "title"),
            ({"requires": None, "audience": ["D1"]}, "audience"),
            ([], None),
            ({}, None),
        ]:
            status, answer = await call(http, "PATCH", f"/api/v1/sessions/{sid}", body)
            assert (status, answer["error"]["code"]) == (400, "invalid"), answer
            assert (answer["error"].get("details") or {}).get("field") == field, answer
        assert len((await ok(http, "GET", "/api/v1/sessions"))["sessions"]) == 1
        unchanged = await ok(http, "GET", f"/api/v1/sessions/{sid}")
        assert (unchanged["requires"], unchanged["plans"]) == (NOTHING, None)
        entries = (await ok(http, "GET", "/api/v1/audit?action=session_changed"))["entries"]
        assert entries == []


async def test_an_organizer_of_the_whole_audience_changes_the_rules_even_after_the_close(
    server,
):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await roster(http)
        province = await sign_in(http, "to-chuc-p", "P", "organizer")
        district = await sign_in(http, "to-chuc-d1", "D1", "organizer")
        viewer = await sign_in(http, "xem-p", "P", "viewer")
        sid = (await ok(http, "POST", "/api/v1/sessions", planned(["D1", "D2"]), province))["id"]
        path = f"/api/v1/sessions/{sid}"

        changed = await ok(
            http,
            "PATCH",
            path,
            {"requires": {"reflection": True, "quiz_max": 10}, "plans": {"depth": 2}},
            province,
        )
        assert changed["requires"] == {"reflection": True, "quiz_pass": None, "quiz_max": 10.0}
        assert changed["plans"] == {"depth": 2, "heads": False, "due": None}
        assert (changed["id"], changed["expected"], changed["state"]) == (sid, 2, "open")
        # a field left out keeps what is stored
        changed = await ok(
            http,
            "PATCH",
            path,
            {"requires": {"quiz_pass": 7.5}, "plans": {"heads": True}},
            province,
        )
        assert changed["requires"] == {"reflection": True, "quiz_pass": 7.5, "quiz_max": 10.0}
        assert changed["plans"] == {"depth": 2, "heads": True, "due": None}
        # the stored range judges a new pass mark
        status, body = await call(http, "PATCH", path, {"requires": {"quiz_pass": 11}}, province)
        assert (status, body["error"]["details"]) == (400, {"field": "requires.quiz_pass"})

        # closed: the rules still change (the export reads them); null clears the plans
        await ok(http, "POST", f"{path}/close", None, province)
        closed = await ok(
            http, "PATCH", path, {"plans": None, "requires": {"reflection": False}}, province
        )
        assert (closed["state"], closed["plans"]) == ("closed", None)
        assert closed["requires"] == {"reflection": False, "quiz_pass": 7.5, "quiz_max": 10.0}
        assert (await ok(http, "GET", path))["requires"] == closed["requires"]
        cleared = await ok(http, "PATCH", path, {"requires": None}, province)
        assert cleared["requires"] == NOTHING

        # a district organizer sees the session but not its whole audience; a viewer may
        # not change; a session out of sight is not found
        for token, code, status in [
            (district, "forbidden", 403),
            (viewer, "forbidden", 403),
        ]:
            got, body = await call(http, "PATCH", path, {"plans": {"depth": 1}}, token)
            assert (got, body["error"]["code"]) == (status, code), body
        other = (await ok(http, "POST", "/api/v1/sessions", planned(["D2"])))["id"]
        got, body = await call(
            http, "PATCH", f"/api/v1/sessions/{other}", {"plans": None}, district
        )
        assert (got, body["error"]["code"]) == (404, "unknown_session")
        got, body = await call(http, "PATCH", "/api/v1/sessions/404404", {"plans": None})
        assert (got, body["error"]["code"]) == (404, "unknown_session")

        entries = (await ok(http, "GET", "/api/v1/audit?action=session_changed"))["entries"]
        assert [(e["user"], e["session"]) for e in entries] == [("to-chuc-p", sid)] * 4
        assert entries[-1]["detail"] == (
            "requires: reflection=true quiz_pass=null quiz_max=10; "
            "plans: depth=2 heads=false due=null"
        )
        assert entries[0]["detail"] == (
            "requires: reflection=false quiz_pass=null quiz_max=100; plans: null"
        )
