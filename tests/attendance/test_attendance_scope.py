"""Attendance, summary, exports and the absences report restricted to a caller's scope.

A province with two districts: a district's viewer sees only its members, counted as the admin
token's answers count them once filtered to the district; a session for the other district
alone is not there for them. First the service with a scope set (no HTTP), then through a real
server on both stores.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import openpyxl
import orjson
from attendance_world import add_site, auth, checkins, create_session, event, post
from builders import SCOPE_MEMBERS, SCOPE_UNITS, seed_scope_roster, signed_in_user
from conftest import ADMIN

from streamsvc.domain.checkin import Incoming, decide_batch
from streamsvc.domain.models import Member, NewSite, Session, Unit
from streamsvc.domain.policy import Scope, UnitTree
from streamsvc.domain.reconcile import (
    AttendanceRecord,
    Status,
    SummaryTally,
    in_scope,
    summarize,
)
from streamsvc.services.attendance import AttendanceService
from streamsvc.services.sessions import NewSessionData

# The scope tests' roster, with a second cell in D2 and more members in D1 and D2.
UNITS = [*SCOPE_UNITS, {"code": "C22", "name": "Chi bộ xã Thanh Mai", "parent": "D2"}]
MEMBERS = [
    *SCOPE_MEMBERS,
    {"code": "A-04", "full_name": "Lý Thị Dung", "unit": "C12"},
    {"code": "A-05", "full_name": "Triệu Văn Em", "unit": "D1"},
    {"code": "B-03", "full_name": "Đồng Thị Hà", "unit": "C22"},
]
D1 = frozenset({"D1", "C11", "C12"})
# Minutes from the start: A-01 on time in D1's hall, A-02 late at D2's bridge (a member counts
# where their unit is, not where they checked in), A-03 leaves early, B-01 on time, Q-01
# (another province) comes unexpected to D1's hall; A-04 and B-02 are absent, A-05 and B-03
# excused. At T (D2 alone) only B-02 comes.
CHECKINS = [("d1", "A-01", -5), ("d2", "A-02", 20), ("d1", "A-03", 0), ("d2", "B-01", 1)]
CHECKINS += [("d1", "Q-01", 2)]
EXCUSES = {"A-05": "ốm nằm viện", "B-03": "đi công tác"}

# --- the rule, without a store ---------------------------------------------------------------


def record(member: str, unit: str, status: Status) -> AttendanceRecord:
    return AttendanceRecord(member, member, unit, status, None, None, None, None, None, 0, (), None)


def test_the_tally_in_scope_keeps_the_scope_units_in_audience_order():
    units = {u["code"]: Unit(u["code"], u["name"], u["parent"]) for u in UNITS}
    records = [record("a", "C11", "present"), record("b", "C21", "absent")]
    records.append(record("c", "C12", "absent"))
    tally = SummaryTally(units, ["P"], D1)
    for r in in_scope(records, D1):
        tally.add(r)
    assert [(u.code, s.expected, s.present) for u, s in tally.by_unit()] == [
        ("D1", 2, 1),
        ("C11", 1, 1),
        ("C12", 1, 0),
    ]
    assert tally.total() == summarize([records[0], records[2]])


# --- the service with a scope set ---------------------------------------------------------

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
NOW = START + timedelta(minutes=30)


async def scoped_store(store) -> tuple[int, int]:
    """Session S for the province (closed) and session T for D2 alone (closed), in the store."""
    await store.upsert_units([Unit(u["code"], u["name"], u["parent"]) for u in UNITS])
    await store.upsert_members([Member(m["code"], m["full_name"], m["unit"]) for m in MEMBERS])
    ids = []
    for audience in (("P",), ("D2",)):
        session = await store.create_session(
            NewSessionData("Nghị quyết", START, END, audience, 15, None), from_excused_of=None
        )
        ids.append(session.id)
    s, t = ids
    sites = {
        "d1": await store.create_site(NewSite(s, "Hội trường D1", "hall", "D1", None, "h1")),
        "d2": await store.create_site(NewSite(s, "Điểm cầu D2", "bridge", "D2", None, "h2")),
    }
    items = [
        (s, sites[site], Incoming(str(uuid.uuid4()), "checkin", START + timedelta(minutes=m), c))
        for site, c, m in CHECKINS
    ]
    out = START + timedelta(minutes=30)
    items.append((s, sites["d1"], Incoming(str(uuid.uuid4()), "checkout", out, "A-03")))
    t_site = await store.create_site(NewSite(t, "Hội trường D2", "hall", "D2", None, "h3"))
    items.append((t, t_site, Incoming(str(uuid.uuid4()), "checkin", START, "B-02")))
    await store.commit_events(items, decide_batch, NOW)
    for member, reason in EXCUSES.items():
        await store.add_excuse(s, member, reason)
    await store.close_session(s, END)
    await store.close_session(t, END)
    return s, t


def d1_scope(units: list[Unit]) -> Scope:
    return Scope("D1", UnitTree(units))


async def test_records_and_summary_in_scope_are_the_whole_filtered(store):
    sid, _ = await scoped_store(store)
    service = AttendanceService(store)
    try:
        rec = await service.load(sid)
        scope = d1_scope(list(rec.units.values())).codes()
        assert scope == D1
        whole = await service.records(rec)
        mine = await service.records(rec, scope=scope)
        by_unit, total = await service.summary(rec, scope=scope)
        whole_by_unit, _ = await service.summary(rec)
    finally:
        await service.close()
    assert mine == [r for r in whole if r.unit in D1]
    assert [r.member for r in mine] == ["A-01", "A-02", "A-03", "A-04", "A-05"]
    assert {r.status for r in mine} == {"present", "late", "absent", "excused"}
    assert total == summarize(mine)
    assert (total.expected, total.present, total.late, total.excused, total.absent) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert [(u.code, s) for u, s in by_unit] == [
        (u.code, s) for u, s in whole_by_unit if u.code in D1
    ]
    assert [u.code for u, _ in by_unit] == ["D1", "C11", "C12"]
    assert by_unit[0][1] == total


async def test_a_make_up_session_in_scope(store):
    """A make-up session has the excused members as its audience and no audience units: in
    scope it lists only the scope's units with someone expected."""
    sid, _ = await scoped_store(store)
    makeup = await store.create_session(
        NewSessionData("Học lại", START, END, (), 15, sid), from_excused_of=sid
    )
    hall = await store.create_site(NewSite(makeup.id, "Hội trường", "hall", "D1", None, "h4"))
    item = (makeup.id, hall, Incoming(str(uuid.uuid4()), "checkin", START, "A-05"))
    await store.commit_events([item], decide_batch, NOW)
    service = AttendanceService(store)
    try:
        records = await service.records(await service.load(makeup.id), scope=D1)
        by_unit, total = await service.summary(await service.load(makeup.id), scope=D1)
        whole_by_unit, _ = await service.summary(await service.load(makeup.id))
        original = await service.records(await service.load(sid), scope=D1)
    finally:
        await service.close()
    assert [(r.member, r.status) for r in records] == [("A-05", "present")]
    assert [u.code for u, _ in whole_by_unit] == ["P", "D1", "D2", "C22"]
    assert [(u.code, s.expected, s.present) for u, s in by_unit] == [("D1", 1, 1)]
    assert (total.expected, total.present) == (1, 1)
    assert next(r.status for r in original if r.member == "A-05") == "made_up"


async def test_exports_in_scope_hold_only_the_scope(store):
    sid, _ = await scoped_store(store)
    service = AttendanceService(store)
    try:
        rec = await service.load(sid)
        files, summaries = {}, {}
        for scope in (None, D1):
            for fmt in ("csv", "json"):
                out = io.BytesIO()
                summaries[fmt, scope] = await service.export(rec, fmt, out, scope=scope)
                files[fmt, scope] = out.getvalue()
        plain = io.BytesIO()
        await service.export(rec, "csv", plain)
    finally:
        await service.close()
    assert plain.getvalue() == files["csv", None]  # no scope is the whole tree, as before
    whole_rows = list(csv.reader(io.StringIO(files["csv", None].decode("utf-8-sig"))))
    rows = list(csv.reader(io.StringIO(files["csv", D1].decode("utf-8-sig"))))
    assert rows[0] == whole_rows[0]
    assert rows[1:] == [row for row in whole_rows[1:] if row[2] in D1]
    assert len(rows) == 6
    doc, whole_doc = orjson.loads(files["json", D1]), orjson.loads(files["json", None])
    assert doc["records"] == [r for r in whole_doc["records"] if r["unit"] in D1]
    assert doc["summary"] == summaries["json", D1].to_json() == summaries["csv", D1].to_json()
    assert doc["summary"]["expected"] == 5


async def test_absences_in_scope_leave_out_hidden_sessions_and_other_members(store):
    sid, tid = await scoped_store(store)
    service = AttendanceService(store)
    units = await store.list_units()
    scope = d1_scope(units)

    async def visible(sessions: list[Session]) -> list[Session]:
        return [s for s in sessions if scope.meets(s.audience)]

    try:
        whole = await service.absences(START - timedelta(days=1), END)
        mine = await service.absences(
            START - timedelta(days=1), END, scope=scope.codes(), visible=visible
        )
    finally:
        await service.close()
    assert whole.sessions == [sid, tid]
    assert mine.sessions == [sid]
    assert [m.member for m in whole.members] == ["A-04", "B-01", "B-02", "B-03"]
    assert [m.to_json() for m in mine.members] == [
        m.to_json() for m in whole.members if m.unit in D1
    ]


# --- through a real server ----------------------------------------------------------------


async def get(http: aiohttp.ClientSession, path: str, token: str, status: int = 200) -> Any:
    async with http.get(path, headers=auth(token)) as r:
        assert r.status == status, await r.text()
        if r.content_type == "application/json":
            return await r.json()
        return await r.read()


async def build_province(http: aiohttp.ClientSession, admin: dict[str, str]) -> tuple[int, int]:
    """Session S for the province and T for D2 alone, both closed, through the API."""
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=30)
    end = start + timedelta(hours=2)
    await seed_scope_roster(http, admin, UNITS, MEMBERS)
    sid = await create_session(http, admin, start, end, audience=["P"])
    sites = {}
    for key, unit, kind in (("d1", "D1", "hall"), ("d2", "D2", "bridge")):
        body = {"name": f"Điểm {unit}", "kind": kind, "unit": unit, "capacity": None}
        sites[key] = await post(http, f"/api/v1/sessions/{sid}/sites", body, admin, 201)
    for key in sites:
        items = [
            event("checkin", code, start + timedelta(minutes=m))
            for site, code, m in CHECKINS
            if site == key
        ]
        if key == "d1":
            items.append(event("checkout", "A-03", start + timedelta(minutes=30)))
        await checkins(http, sid, sites[key], *items)
    for member, reason in EXCUSES.items():
        body = {"member": member, "reason": reason}
        await post(http, f"/api/v1/sessions/{sid}/excuses", body, admin, 201)
    tid = await create_session(http, admin, start, end, audience=["D2"])
    t_site = await add_site(http, admin, tid, "Hội trường D2", "hall")
    await checkins(http, tid, t_site, event("checkin", "B-02", start))
    for session in (sid, tid):
        await post(http, f"/api/v1/sessions/{session}/close", {}, admin, 200)
    return sid, tid


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def sheets(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    try:
        return {ws.title: [tuple(row) for row in ws.iter_rows(values_only=True)] for ws in book}
    finally:
        book.close()


async def test_a_district_viewer_sees_only_the_district(server):
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(base_url=server.url) as http:
        sid, tid = await build_province(http, admin)
        viewer = await signed_in_user(http, admin, "xem-d1", "D1")
        base = f"/api/v1/sessions/{sid}"

        whole = await get(http, f"{base}/attendance", ADMIN)
        mine = await get(http, f"{base}/attendance", viewer)
        assert mine["records"] == [r for r in whole["records"] if r["unit"] in D1]
        assert [r["member"] for r in mine["records"]] == ["A-01", "A-02", "A-03", "A-04", "A-05"]

        whole_summary = await get(http, f"{base}/summary", ADMIN)
        summary = await get(http, f"{base}/summary", viewer)
        d1_row = next(u for u in whole_summary["units"] if u["code"] == "D1")
        assert summary["units"] == [u for u in whole_summary["units"] if u["code"] in D1]
        assert [u["code"] for u in summary["units"]] == ["D1", "C11", "C12"]
        assert summary["total"] == {k: v for k, v in d1_row.items() if k not in ("code", "name")}
        assert summary["total"]["expected"] == 5
        assert mine["summary"] == summary["total"]

        whole_csv = csv_rows(await get(http, f"{base}/attendance.csv", ADMIN))
        mine_csv = csv_rows(await get(http, f"{base}/attendance.csv", viewer))
        assert mine_csv[0] == whole_csv[0]
        assert mine_csv[1:] == [row for row in whole_csv[1:] if row[2] in D1]
        assert len(mine_csv) == 6

        whole_book = sheets(await get(http, f"{base}/attendance.xlsx", ADMIN))
        book = sheets(await get(http, f"{base}/attendance.xlsx", viewer))
        assert list(book) == ["attendance", "summary"]
        records = book["attendance"]
        assert records[0] == whole_book["attendance"][0]
        assert records[1:] == [r for r in whole_book["attendance"][1:] if r[2] in D1]
        assert [r[0] for r in records[1:]] == [r["member"] for r in mine["records"]]
        units = book["summary"]
        assert units[1:-1] == [r for r in whole_book["summary"][1:-1] if r[0] in D1]
        d1_sheet_row = next(r for r in whole_book["summary"] if r[0] == "D1")
        assert units[-1][2:] == d1_sheet_row[2:]  # the total row counts the district

        report = "/api/v1/reports/absences"
        day = datetime.now(UTC).date()
        query = f"?from={day - timedelta(days=1)}&to={day + timedelta(days=1)}"
        whole_absent = await get(http, report + query, ADMIN)
        absent = await get(http, report + query, viewer)
        assert whole_absent["sessions"] == [sid, tid]
        assert absent["sessions"] == [sid]
        assert absent["members"] == [m for m in whole_absent["members"] if m["unit"] in D1]
        assert [m["member"] for m in absent["members"]] == ["A-04"]
        whole_members = [m["member"] for m in whole_absent["members"]]
        assert whole_members == ["A-04", "B-01", "B-02", "B-03"]


async def test_every_role_of_the_district_sees_the_same_and_not_the_other_district(server):
    """Viewer, organizer and admin of D1 alike: the same restricted answers, and a session of
    D2 alone answers 404 word for word as one that does not exist."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(base_url=server.url) as http:
        sid, tid = await build_province(http, admin)
        unknown = tid + 1000
        day = datetime.now(UTC).date()
        report = f"/api/v1/reports/absences?from={day - timedelta(days=1)}&to={day}"
        answers = []
        for role in ("viewer", "organizer", "admin"):
            token = await signed_in_user(http, admin, f"{role}-d1", "D1", role)
            for path in ("attendance", "attendance.csv", "attendance.xlsx", "summary"):
                hidden = await get(http, f"/api/v1/sessions/{tid}/{path}", token, 404)
                missing = await get(http, f"/api/v1/sessions/{unknown}/{path}", token, 404)
                assert hidden["error"]["code"] == "unknown_session"
                assert str(hidden).replace(str(tid), "N") == str(missing).replace(str(unknown), "N")
                await get(http, f"/api/v1/sessions/{tid}/{path}", ADMIN)  # the admin token: there
            summary = await get(http, f"/api/v1/sessions/{sid}/summary", token)
            absent = await get(http, report, token)
            assert absent["sessions"] == [sid]
            answers.append((summary, absent["members"]))
        assert answers[0][0]["total"]["expected"] == 5
        assert answers[0] == answers[1] == answers[2]
