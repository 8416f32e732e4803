"""Recording study evidence (`POST /api/v1/sessions/{sid}/evidence`) against a real
`streamsvc serve` on each store: JSON and the quiz platform's CSV, partial uploads that keep
each other's values, all or nothing, the caller's scope and the audit entry.

The session is for district DB1 (cells CB1: 10000001-2, CB2: 10000003-4, as in builders);
the members of DB2's cell CB3 (10000005-6) are not expected at it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from builders import MEMBERS, UNITS, iso, now
from conftest import ADMIN

from streamsvc.domain.models import Evidence
from streamsvc.storage import open_store

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
CSV = {"Content-Type": "text/csv"}
PASSWORD = "mật-khẩu-đủ-dài-2026"
REQUIRES = {"reflection": True, "quiz_pass": 5, "quiz_max": 10}

# a quiz platform's export as it comes, Vietnamese header and decimal commas included
QUIZ_EXPORT = (
    "\ufeffSTT,Họ và tên,Mã đảng viên,Điểm,Thời gian nộp\r\n"
    '1,Nguyễn Văn An,10000001,"8,5",22/05/2026 10:15\r\n'
    "2,Hoàng Thị Đào,10000002,4,22/05/2026 10:17\r\n"
    "3,Nông Văn Đồng,10000003,,\r\n"
)


class Api:
    def __init__(self, http: aiohttp.ClientSession, token: str = ADMIN) -> None:
        self.http, self.token = http, token

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def call(
        self, method: str, path: str, body: Any = None, *, csv: str | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:  # fmt: skip
        headers = self.auth(token)
        if csv is not None:
            kwargs: dict[str, Any] = {"data": csv.encode(), "headers": {**headers, **CSV}}
        else:
            kwargs = {"json": body, "headers": headers}
        async with self.http.request(method, path, **kwargs) as r:
            return r.status, await r.json()

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, data = await self.call(method, path, body)
        assert got == status, (method, path, got, data)
        return data

    async def evidence(self, sid: int, rows: Any = None, *, csv: str | None = None,
                       token: str | None = None) -> tuple[int, Any]:  # fmt: skip
        body = None if csv is not None else {"evidence": rows}
        return await self.call("POST", f"/api/v1/sessions/{sid}/evidence", body, csv=csv,
                               token=token)  # fmt: skip

    async def user(self, login: str, unit: str, role: str) -> str:
        body = {"login": login, "full_name": "Bí thư chi bộ", "unit": unit, "role": role}
        await self.ok("POST", "/api/v1/users", {**body, "password": PASSWORD}, 201)
        signed = await self.ok("POST", "/api/v1/auth/login", {"login": login, "password": PASSWORD})
        return str(signed["token"])


@pytest.fixture
async def api(server) -> Any:
    async with aiohttp.ClientSession(base_url=server.url) as http:
        api = Api(http)
        await api.ok("POST", "/api/v1/units", {"units": UNITS})
        await api.ok("POST", "/api/v1/members", {"members": MEMBERS})
        yield api


async def new_session(api: Api) -> int:
    body = {
        "title": "Học tập Nghị quyết Đại hội XIV",
        "starts_at": iso(now()),
        "ends_at": iso(now() + timedelta(hours=2)),
        "audience": ["DB1"],
        "requires": REQUIRES,
    }
    return int((await api.ok("POST", "/api/v1/sessions", body, 201))["id"])


async def stored(database_url: str, sid: int) -> dict[str, tuple[bool, float | None, bool]]:
    """What the store holds for the session: {member: (reflection, quiz_score, self_study)}."""
    store = open_store(database_url)
    await store.open()
    try:
        found: dict[str, Evidence] = await store.list_evidence(sid)
    finally:
        await store.close()
    return {m: (e.reflection, e.quiz_score, e.self_study) for m, e in found.items()}


@pytest.mark.parametrize("form", ["json", "csv"])
async def test_an_upload_records_evidence_and_a_second_one_updates_it(api, database_url, form):
    sid = await new_session(api)
    if form == "json":
        first = [
            {"member": "10000001", "reflection": True, "quiz_score": 8.5},
            {"member": "10000003", "reflection": False, "quiz_score": None, "self_study": True},
        ]
        again = [{"member": "10000001", "quiz_score": 9}, {"member": "10000004"}]
        status, body = await api.evidence(sid, first)
        assert (status, body) == (200, {"created": 2, "updated": 0})
        status, body = await api.evidence(sid, again)
    else:
        status, body = await api.evidence(
            sid,
            csv='member,reflection,quiz_score,self_study\n10000001,x,"8,5",\n10000003,không,,có\n',
        )
        assert (status, body) == (200, {"created": 2, "updated": 0})
        status, body = await api.evidence(sid, csv="Số thẻ,Score\n10000001,9\n10000004,\n")
    assert (status, body) == (200, {"created": 1, "updated": 1})
    assert await stored(database_url, sid) == {
        "10000001": (True, 9.0, False),
        "10000003": (False, None, True),
        "10000004": (False, None, False),
    }


async def test_a_quiz_file_and_the_reflections_keep_each_others_values(api, database_url):
    sid = await new_session(api)
    status, body = await api.evidence(sid, csv=QUIZ_EXPORT)
    assert (status, body) == (200, {"created": 3, "updated": 0})
    ticks = [{"member": c, "reflection": True} for c in ("10000001", "10000002")]
    assert await api.evidence(sid, ticks) == (200, {"created": 0, "updated": 2})
    # the file again, after the ticks: the reflections stay
    assert await api.evidence(sid, csv=QUIZ_EXPORT) == (200, {"created": 0, "updated": 3})
    assert await stored(database_url, sid) == {
        "10000001": (True, 8.5, False),
        "10000002": (True, 4.0, False),
        "10000003": (False, None, False),
    }


# (row as JSON, the same row as a CSV line, a piece of its error)
BAD = [
    ({"member": "10000002", "quiz_score": "tám"}, "10000002,,tám", "is not a number"),
    ({"member": "10000003", "quiz_score": 10.5}, '10000003,,"10,5"', "outside 0..10"),
    ({"member": "10000005", "quiz_score": 7}, "10000005,,7", "not expected at session"),
    ({"member": "10000001", "reflection": True}, "10000001,x,", "duplicate member 10000001"),
    ({"member": "99999999", "reflection": True}, "99999999,x,", "unknown member 99999999"),
    ({"member": "10000004", "reflection": "maybe"}, "10000004,maybe,", "not a yes/no value"),
]


@pytest.mark.parametrize("form", ["json", "csv"])
async def test_one_upload_lists_every_bad_row_and_stores_nothing(api, database_url, form):
    sid = await new_session(api)
    rows = [
        ({"member": "10000001", "quiz_score": 8}, "10000001,,8"),
        *[(row, line) for row, line, _ in BAD],
    ]
    if form == "json":
        status, body = await api.evidence(sid, [json for json, _ in rows])
    else:
        text = "Mã đảng viên,Thu hoạch,Điểm\n" + "\n".join(line for _, line in rows) + "\n"
        status, body = await api.evidence(sid, csv=text)
    assert status == 400, body
    assert body["error"]["code"] == "import_rejected"
    details = body["error"]["details"]
    assert [d["row"] for d in details] == list(range(2, 2 + len(BAD)))
    for detail, (_, _, piece) in zip(details, BAD, strict=True):
        assert piece in detail["error"], detail
    assert await stored(database_url, sid) == {}


@pytest.mark.parametrize(
    ("csv", "piece"),
    [
        ("STT,Họ và tên,Điểm\n1,Nguyễn Văn An,8\n", "no member column"),
        (None, '{"evidence": [...]}'),
    ],
)
async def test_a_body_without_rows_is_refused(api, csv, piece):
    sid = await new_session(api)
    if csv is None:
        status, body = await api.call("POST", f"/api/v1/sessions/{sid}/evidence", {"rows": []})
    else:
        status, body = await api.evidence(sid, csv=csv)
    assert status == 400 and piece in body["error"]["message"], body


async def test_a_cell_organizer_records_the_cell_and_nothing_outside_it(api, database_url):
    sid = await new_session(api)
    secretary = await api.user("cb1.bithu", "CB1", "organizer")
    viewer = await api.user("cb1.xem", "CB1", "viewer")
    rows = [
        {"member": "10000001", "reflection": True},
        {"member": "10000003", "reflection": True},  # CB2: in the session, not in CB1
        {"member": "10000002", "quiz_score": 7},
    ]
    status, body = await api.evidence(sid, rows, token=secretary)
    assert status == 403, body
    assert body["error"]["code"] == "forbidden"
    assert body["error"]["details"] == [{"row": 2, "error": "unit CB2 is outside your scope"}]
    status, body = await api.evidence(sid, rows[::2], token=viewer)
    assert status == 403 and body["error"]["code"] == "forbidden", body
    assert await stored(database_url, sid) == {}

    status, body = await api.evidence(sid, rows[::2], token=secretary)
    assert (status, body) == (200, {"created": 2, "updated": 0})
    assert await stored(database_url, sid) == {
        "10000001": (True, None, False),
        "10000002": (False, 7.0, False),
    }
    # a session for another district is out of sight: 404 as for one that does not exist
    other = await api.ok(
        "POST",
        "/api/v1/sessions",
        {
            "title": "Na Rì",
            "starts_at": iso(now()),
            "ends_at": iso(now() + timedelta(hours=1)),
            "audience": ["DB2"],
        },
        201,
    )
    status, body = await api.evidence(other["id"], rows[:1], token=secretary)
    assert status == 404 and body["error"]["code"] == "unknown_session", body


async def test_each_upload_writes_one_audit_entry(api):
    sid = await new_session(api)
    secretary = await api.user("cb1.bithu", "CB1", "organizer")
    rows = [{"member": "10000001", "reflection": True}, {"member": "10000002", "reflection": True}]
    assert (await api.evidence(sid, rows, token=secretary))[0] == 200
    assert (await api.evidence(sid, rows[:1], token=secretary))[0] == 200
    assert (await api.evidence(sid, [*rows, {"member": "nope"}], token=secretary))[0] == 400
    entries = (await api.ok("GET", f"/api/v1/audit?session={sid}&action=evidence_recorded"))[
        "entries"
    ]
    assert [(e["user"], e["action"], e["session"], e["target"], e["detail"]) for e in entries] == [
        ("cb1.bithu", "evidence_recorded", sid, "10000001", "1 member(s)"),
        ("cb1.bithu", "evidence_recorded", sid, None, "2 member(s)"),
    ]


async def test_ticks_during_a_long_quiz_import_are_not_overwritten_by_it(api, database_url):
    many = [
        {"code": f"M{i:05d}", "full_name": f"Đảng viên {i}", "unit": "CB2"} for i in range(3000)
    ]
    await api.ok("POST", "/api/v1/members", {"members": many})
    sid = await new_session(api)
    quiz = "Mã đảng viên,Điểm\n" + "".join(f"{m['code']},7\n" for m in many)
    ticked = [m["code"] for m in many[::150]]

    async def tick(code: str) -> tuple[int, Any]:
        await asyncio.sleep(0.01 * ticked.index(code))
        return await api.evidence(sid, [{"member": code, "reflection": True}])

    answers = await asyncio.gather(api.evidence(sid, csv=quiz), *[tick(c) for c in ticked])
    assert all(status == 200 for status, _ in answers), answers
    found = await stored(database_url, sid)
    assert len(found) == 3000
    assert [found[code] for code in ticked] == [(True, 7.0, False)] * len(ticked)
