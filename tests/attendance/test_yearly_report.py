"""The yearly report (`/api/v1/reports/yearly`, `.csv`, `.xlsx`) through a real
`streamsvc serve` on each store, restricted to the caller's scope.

Two closed sessions on one day: S1 for the province (a reflection required; cells owe a
committee plan and their head's) and S2 for district D1 (nothing required); an open session
and a closed one of another year are not counted.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import openpyxl
import pytest
from attendance_world import (
    MEMBERS,
    UNIT_NAMES,
    World,
    add_site,
    auth,
    checkins,
    create_session,
    event,
    post,
    seed_roster,
)
from conftest import ADMIN

HEADERS = auth(ADMIN)
PASSWORD = "mật-khẩu-đủ-dài-2026"
MEMBER_KEYS = ["member", "full_name", "unit", "sessions", "absent", "excused", "made_up",
               "incomplete"]  # fmt: skip
UNIT_KEYS = ["code", "name", "expected", "attended", "completed", "attendance_rate",
             "completion_rate", "plans_owed", "plans_handed_in"]  # fmt: skip
NAMES = {m["code"]: m["full_name"] for m in MEMBERS}
UNIT_OF = {m["code"]: m["unit"] for m in MEMBERS}

# member: (sessions, absent, excused, made_up, incomplete), as the admin token sees them
WANTED_MEMBERS = {
    "AX-01": (1, 0, 0, 0, 0),
    "DV-01": (2, 0, 0, 0, 0),
    "DV-02": (2, 1, 0, 0, 1),  # late at S1 without a reflection, absent at S2
    "DV-03": (2, 1, 0, 0, 0),
    "DV-04": (2, 2, 0, 0, 0),
    "DV-05": (2, 2, 0, 0, 0),
    "DV-06": (2, 0, 0, 0, 0),
    "DV-09": (2, 2, 0, 0, 0),
    "DV-10": (2, 2, 0, 0, 0),
    "dv-07": (2, 1, 1, 0, 0),
    "ĐV-08": (2, 2, 0, 0, 0),
}
# code: (expected, attended, completed, attendance_rate, completion_rate, owed, handed in)
WANTED_UNITS = {
    "P": (21, 7, 6, 0.3333, 0.2857, 6, 3),
    "D1": (20, 6, 5, 0.3, 0.25, 4, 2),
    "C1": (10, 4, 3, 0.4, 0.3, 2, 2),
    "C2": (10, 2, 2, 0.2, 0.2, 2, 0),
    "D2": (1, 1, 1, 1.0, 1.0, 2, 1),
    "C3": (1, 1, 1, 1.0, 1.0, 2, 1),
}


def members_json(codes: list[str]) -> list[dict[str, Any]]:
    return [
        dict(
            zip(MEMBER_KEYS, (code, NAMES[code], UNIT_OF[code], *WANTED_MEMBERS[code]), strict=True)
        )
        for code in codes
    ]


def units_json(codes: list[str]) -> list[dict[str, Any]]:
    return [
        dict(zip(UNIT_KEYS, (code, UNIT_NAMES[code], *WANTED_UNITS[code]), strict=True))
        for code in codes
    ]


async def sign_in(http: aiohttp.ClientSession, login: str, unit: str) -> dict[str, str]:
    user = {"login": login, "full_name": "Người xem", "unit": unit, "role": "viewer"}
    await post(http, "/api/v1/users", {**user, "password": PASSWORD}, HEADERS, 201)
    body = await post(http, "/api/v1/auth/login", {"login": login, "password": PASSWORD}, {}, 200)
    return auth(body["token"])


async def build(http: aiohttp.ClientSession) -> World:
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=30)
    world = World(start, start + timedelta(hours=2))
    await seed_roster(http, HEADERS)

    world.sid = s1 = await create_session(
        http, HEADERS, world.start, world.end, audience=["P"],
        requires={"reflection": True}, plans={"depth": 2, "heads": True, "due": None},
    )  # fmt: skip
    hall = await add_site(http, HEADERS, s1, "Hội trường Tỉnh ủy", "hall")
    await checkins(
        http,
        s1,
        hall,
        event("checkin", "DV-01", world.at(-5)),
        event("checkin", "DV-02", world.at(20)),
        event("checkin", "DV-06", world.at(0)),
        event("checkin", "AX-01", world.at(0)),
    )
    await post(http, f"/api/v1/sessions/{s1}/excuses", {"member": "dv-07", "reason": "ốm"},
               HEADERS, 201)  # fmt: skip
    rows = [{"member": code, "reflection": True} for code in ("DV-01", "DV-06", "AX-01")]
    await post(http, f"/api/v1/sessions/{s1}/evidence", {"evidence": rows}, HEADERS, 200)
    for unit, kind in [("C1", "committee"), ("C1", "head"), ("C3", "committee")]:
        r = await http.put(f"/api/v1/sessions/{s1}/plans/{unit}/{kind}", json={}, headers=HEADERS)
        assert r.status == 200, await r.text()

    world.makeup = s2 = await create_session(
        http, HEADERS, world.at(5), world.at(60), audience=["D1"]
    )
    site = await add_site(http, HEADERS, s2, "Hội trường Huyện ủy", "hall")
    await checkins(
        http,
        s2,
        site,
        *(event("checkin", code, world.at(6)) for code in ("DV-01", "DV-03", "DV-06")),
    )
    # not counted: an open session, and a closed one of another year
    await create_session(http, HEADERS, world.at(1), world.at(90), audience=["P"])
    other = await create_session(
        http, HEADERS, world.start - timedelta(days=400), world.end - timedelta(days=400),
        audience=["P"],
    )  # fmt: skip
    for sid in (s1, s2, other):
        await post(http, f"/api/v1/sessions/{sid}/close", {}, HEADERS, 200)
    return world


@pytest.fixture
async def http(server) -> Any:
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str, headers: dict[str, str]) -> Any:
    r = await http.get(path, headers=headers)
    assert r.status == 200, await r.text()
    return r


async def test_yearly_report_whole_tree_and_in_scope(http):
    world = await build(http)
    day = world.start.date()
    query = f"?from={day}&to={day}"

    body = await (await get(http, f"/api/v1/reports/yearly{query}", HEADERS)).json()
    assert body["sessions"] == [world.sid, world.makeup]
    assert body["members"] == members_json(sorted(WANTED_MEMBERS))
    assert body["units"] == units_json(["P", "D1", "C1", "C2", "D2", "C3"])

    # a district's viewer: its members and units only, the province row left out
    district = await sign_in(http, "db1.viewer", "D1")
    body = await (await get(http, f"/api/v1/reports/yearly{query}", district)).json()
    assert body["sessions"] == [world.sid, world.makeup]
    assert body["members"] == members_json(sorted(c for c in WANTED_MEMBERS if c != "AX-01"))
    assert body["units"] == units_json(["D1", "C1", "C2"])

    # another district's cell: S2 is not theirs to see at all
    cell = await sign_in(http, "c3.viewer", "C3")
    body = await (await get(http, f"/api/v1/reports/yearly{query}", cell)).json()
    assert body["sessions"] == [world.sid]
    assert body["members"] == members_json(["AX-01"])
    assert body["units"] == units_json(["C3"])

    later = day.replace(year=day.year + 1)
    body = await (
        await get(http, f"/api/v1/reports/yearly?from={later}&to={later}", HEADERS)
    ).json()
    assert (body["sessions"], body["members"], body["units"]) == ([], [], [])


async def test_yearly_report_as_csv_and_xlsx(http):
    world = await build(http)
    day = world.start.date()
    query = f"?from={day}&to={day}"
    district = await sign_in(http, "db1.viewer", "D1")
    members = members_json(sorted(c for c in WANTED_MEMBERS if c != "AX-01"))

    r = await get(http, f"/api/v1/reports/yearly.csv{query}", district)
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == 'attachment; filename="yearly-report.csv"'
    raw = await r.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    header = [*MEMBER_KEYS[:3], "unit_name", *MEMBER_KEYS[3:]]
    assert rows[0] == header
    assert rows[1:] == [
        [m["member"], m["full_name"], m["unit"], UNIT_NAMES[m["unit"]],
         *(str(m[k]) for k in MEMBER_KEYS[3:])]
        for m in members
    ]  # fmt: skip

    r = await get(http, f"/api/v1/reports/yearly.xlsx{query}", district)
    book = openpyxl.load_workbook(io.BytesIO(await r.read()))
    assert book.sheetnames == ["members", "units"]
    sheet = [list(row) for row in book["members"].iter_rows(values_only=True)]
    assert sheet[0] == header
    assert sheet[1:] == [
        [m["member"], m["full_name"], m["unit"], UNIT_NAMES[m["unit"]],
         *(m[k] for k in MEMBER_KEYS[3:])]
        for m in members
    ]  # fmt: skip
    units = [list(row) for row in book["units"].iter_rows(values_only=True)]
    assert units[0] == UNIT_KEYS
    assert units[1:] == [list(u.values()) for u in units_json(["D1", "C1", "C2"])]
    assert book["units"]["F2"].number_format == "0.00%"


@pytest.mark.parametrize("path", ["yearly", "yearly.csv", "yearly.xlsx"])
async def test_yearly_report_needs_a_range_and_a_user(http, path):
    r = await http.get(f"/api/v1/reports/{path}?from=2026-01-01", headers=HEADERS)
    assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid")
    r = await http.get(f"/api/v1/reports/{path}?from=2026-01-01&to=2026-12-31")
    assert r.status == 401
