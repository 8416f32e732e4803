"""Action plans over HTTP against a real `streamsvc serve` on each store: a province session
whose grassroots committees and their heads owe a plan, a district organizer recording its
committees' plans, the missing report before and after the deadline, scope, roles, withdrawal
and the audit log.

The tree: province TU -> districts DB1, DB2 -> grassroots committees (depth 2) -> cells.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from builders import iso
from conftest import ADMIN

PASSWORD = "mật-khẩu-đủ-dài"
UNITS = [
    {"code": "TU", "name": "Tỉnh ủy Bắc Kạn", "parent": None},
    {"code": "DB1", "name": "Huyện ủy Ba Bể", "parent": "TU"},
    {"code": "CS11", "name": "Đảng ủy xã Đồng Phúc", "parent": "DB1"},
    {"code": "CB111", "name": "Chi bộ thôn Nà Hàn", "parent": "CS11"},
    {"code": "CS12", "name": "Đảng ủy xã Nam Mẫu", "parent": "DB1"},
    {"code": "CB121", "name": "Chi bộ thôn Pác Ngòi", "parent": "CS12"},
    {"code": "DB2", "name": "Huyện ủy Na Rì", "parent": "TU"},
    {"code": "CS21", "name": "Đảng ủy xã Côn Minh", "parent": "DB2"},
    {"code": "CB211", "name": "Chi bộ thôn Nà Lốc", "parent": "CS21"},
]
MEMBERS = [
    {"code": "20000001", "full_name": "Nguyễn Văn An", "unit": "CB111"},
    {"code": "20000002", "full_name": "Nông Văn Đồng", "unit": "CB121"},
    {"code": "20000003", "full_name": "Lý Văn Bình", "unit": "CB211"},
]
USERS = [
    {"login": "db1.org", "full_name": "Lương Thị Nga", "unit": "DB1", "role": "organizer"},
    {"login": "db1.viewer", "full_name": "Đinh Văn Tú", "unit": "DB1", "role": "viewer"},
]
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
DUE = START + timedelta(days=3)


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def call(
        self, method: str, path: str, token: str = ADMIN, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.read()

    async def ok(
        self, method: str, path: str, token: str = ADMIN, body: Any = None, status: int = 200
    ) -> Any:
        got, data = await self.call(method, path, token, body)
        assert got == status, (method, path, got, data)
        return data

    async def token(self, login: str) -> str:
        body = {"login": login, "password": PASSWORD}
        data = await self.ok("POST", "/api/v1/auth/login", body=body)
        return str(data["token"])


@pytest.fixture
async def api(server) -> Any:
    async with aiohttp.ClientSession() as http:
        api = Api(http, server.url)
        await api.ok("POST", "/api/v1/units", body={"units": UNITS})
        await api.ok("POST", "/api/v1/members", body={"members": MEMBERS})
        for user in USERS:
            await api.ok("POST", "/api/v1/users", body={**user, "password": PASSWORD}, status=201)
        yield api


RULE = {"depth": 2, "heads": True, "due": iso(DUE)}


async def province_session(api: Api, rule: Any = RULE, audience: tuple[str, ...] = ("TU",)) -> int:
    """A session four days ago, closed; by default the province's, where grassroots
    committees and their heads owe a plan, due a day ago."""
    body = {
        "title": "Học tập Nghị quyết Đại hội XIV",
        "starts_at": iso(START),
        "ends_at": iso(START + timedelta(hours=3)),
        "audience": list(audience),
        "plans": rule,
    }
    session = await api.ok("POST", "/api/v1/sessions", body=body, status=201)
    assert session["plans"] == rule
    await api.ok("POST", f"/api/v1/sessions/{session['id']}/close")
    return int(session["id"])


def kinds(units: list[dict[str, Any]], key: str = "missing") -> dict[str, Any]:
    return {u["code"]: u[key] for u in units}


async def test_a_district_organizer_records_its_committees_plans(api):
    sid = await province_session(api)
    org = await api.token("db1.org")
    base = f"/api/v1/sessions/{sid}/plans"

    board = await api.ok("GET", base, org)
    assert board["rule"] == {"depth": 2, "heads": True, "due": iso(DUE)}
    assert [(u["code"], u["name"]) for u in board["units"]] == [
        ("CS11", "Đảng ủy xã Đồng Phúc"),
        ("CS12", "Đảng ủy xã Nam Mẫu"),
    ]  # CS21 is another district's
    assert all(u["owed"] == ["committee", "head"] for u in board["units"])
    assert kinds(board["units"]) == {"CS11": ["committee", "head"], "CS12": ["committee", "head"]}

    on_time = iso(DUE - timedelta(days=1))
    body = {"handed_in_at": on_time, "note": "Kế hoạch số 12-KH/ĐU"}
    plan = await api.ok("PUT", f"{base}/CS11/committee", org, body)
    assert plan == {**body, "recorded_by": "db1.org"}
    late = iso(DUE + timedelta(hours=5))
    await api.ok("PUT", f"{base}/CS11/head", org, {"handed_in_at": late})
    await api.ok("PUT", f"{base}/CS12/committee", org, {"handed_in_at": on_time})
    # recorded again: replaced, not doubled (an empty body is handed in now)
    again = await api.ok("PUT", f"{base}/CS12/committee", org)
    assert datetime.fromisoformat(again["handed_in_at"]) > DUE and again["note"] is None

    board = await api.ok("GET", base, org)
    cs11, cs12 = board["units"]
    assert cs11["committee"]["note"] == "Kế hoạch số 12-KH/ĐU"
    assert cs11["head"] == {"handed_in_at": late, "recorded_by": "db1.org", "note": None}
    assert (cs11["missing"], cs11["late"]) == ([], True)
    assert (cs12["missing"], cs12["late"], cs12["head"]) == (["head"], True, None)

    # the missing report: at the deadline by default, at any moment when asked
    report = await api.ok("GET", f"{base}/missing", org)
    assert report["at"] == iso(DUE)
    assert kinds(report["units"]) == {"CS11": ["head"], "CS12": ["committee", "head"]}
    before = await api.ok("GET", f"{base}/missing?at={iso(START)}", org)
    assert kinds(before["units"]) == {"CS11": ["committee", "head"], "CS12": ["committee", "head"]}
    after = await api.ok("GET", f"{base}/missing?at={iso(datetime.now(UTC))}", org)
    assert kinds(after["units"]) == {"CS12": ["head"]}
    # the whole province (admin token) sees the other district owing too
    everyone = await api.ok("GET", f"{base}/missing")
    assert kinds(everyone["units"]) == {
        "CS11": ["head"],
        "CS12": ["committee", "head"],
        "CS21": ["committee", "head"],
    }

    # the CSV of the same, with an offset given unencoded (`+` read as a space)
    local = (DUE + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%S+07:00")
    raw = await api.ok("GET", f"{base}/missing.csv?at={local}", org)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows == [
        ["code", "name", "missing"],
        ["CS11", "Đảng ủy xã Đồng Phúc", "head"],
        ["CS12", "Đảng ủy xã Nam Mẫu", "committee;head"],
    ]

    # withdrawn: missing again; a second withdrawal finds nothing
    await api.ok("DELETE", f"{base}/CS11/head", org, status=204)
    status, body = await api.call("DELETE", f"{base}/CS11/head", org)
    assert (status, body["error"]["code"]) == (404, "unknown_plan")
    board = await api.ok("GET", base, org)
    assert kinds(board["units"]) == {"CS11": ["head"], "CS12": ["head"]}
    assert kinds(board["units"], "late") == {"CS11": False, "CS12": True}

    entries = (await api.ok("GET", f"/api/v1/audit?session={sid}"))["entries"]
    plans = [
        (e["user"], e["action"], e["target"], e["detail"])
        for e in reversed(entries)
        if e["action"].startswith("plan_")
    ]
    assert plans == [
        ("db1.org", "plan_recorded", "CS11", f"committee, handed in {on_time}"),
        ("db1.org", "plan_recorded", "CS11", f"head, handed in {late}"),
        ("db1.org", "plan_recorded", "CS12", f"committee, handed in {on_time}"),
        ("db1.org", "plan_recorded", "CS12", f"committee, handed in {again['handed_in_at']}"),
        ("db1.org", "plan_withdrawn", "CS11", "head"),
    ]


async def test_scope_roles_and_units_that_owe_nothing(api):
    sid = await province_session(api)
    org, viewer = await api.token("db1.org"), await api.token("db1.viewer")
    base = f"/api/v1/sessions/{sid}/plans"

    async def error(
        method: str, path: str, token: str = ADMIN, body: Any = None
    ) -> tuple[int, str]:
        status, data = await api.call(method, path, token, body)
        return status, data["error"]["code"]

    # another district's committee: forbidden, nothing recorded
    assert await error("PUT", f"{base}/CS21/committee", org) == (403, "forbidden")
    assert await error("DELETE", f"{base}/CS21/committee", org) == (403, "forbidden")
    # a unit that owes nothing: a cell, a district, an unknown unit, a kind not owed
    for path in ("CB111/committee", "DB1/committee", "NOPE/committee", "CS11/secretary"):
        assert await error("PUT", f"{base}/{path}", org) == (404, "unknown_unit"), path
    # a viewer lists but does not record or withdraw
    assert len((await api.ok("GET", base, viewer))["units"]) == 2
    assert (await api.ok("GET", f"{base}/missing", viewer))["at"] == iso(DUE)
    assert await error("PUT", f"{base}/CS11/committee", viewer) == (403, "forbidden")
    await api.ok("PUT", f"{base}/CS11/committee", org)
    assert await error("DELETE", f"{base}/CS11/committee", viewer) == (403, "forbidden")
    # bad input
    for body in (
        {"handed_in_at": "yesterday"},
        {"handed_in_at": iso(datetime.now(UTC) + timedelta(days=1))},
        {"handed_in_at": iso(START - timedelta(days=1))},
        {"note": 12},
        {"note": "x" * 2001},
        ["not", "an", "object"],
    ):
        assert await error("PUT", f"{base}/CS12/committee", org, body) == (400, "invalid"), body
    assert await error("GET", f"{base}/missing?at=tomorrow", org) == (400, "invalid")
    board = await api.ok("GET", base)
    assert kinds(board["units"]) == {
        "CS11": ["head"],
        "CS12": ["committee", "head"],
        "CS21": ["committee", "head"],
    }
    # a session out of sight answers as an unknown one
    other = await province_session(api, {"depth": 2, "heads": False, "due": None}, ("DB2",))
    path = f"/api/v1/sessions/{other}/plans"
    assert await error("GET", path, viewer) == (404, "unknown_session")
    assert await error("PUT", f"{path}/CS21/committee", org) == (404, "unknown_session")
    await api.ok("PUT", f"{path}/CS21/committee")
    assert await error("PUT", f"{path}/CS21/head") == (404, "unknown_unit")  # heads owe none


async def test_a_session_without_a_rule_owes_no_plans(api):
    sid = await province_session(api, None)
    base = f"/api/v1/sessions/{sid}/plans"
    assert await api.ok("GET", base) == {"rule": None, "units": []}
    missing = await api.ok("GET", f"{base}/missing")
    assert missing["units"] == [] and datetime.fromisoformat(missing["at"]) > DUE
    status, body = await api.call("PUT", f"{base}/CS11/committee")
    assert (status, body["error"]["code"]) == (404, "unknown_unit")
