"""The attendance endpoints end to end on both stores: records, summaries, make-up, errors."""

from __future__ import annotations

import pytest
from attendance_world import (
    TOTAL,
    UNIT_NAMES,
    auth,
    build_session,
    build_world,
    expected_records,
    post,
)


async def get_json(client, path, headers, status=200):
    r = await client.get(path, headers=headers)
    assert r.status == status, await r.text()
    assert r.content_type == "application/json"
    return await r.json()


async def test_attendance_of_a_closed_session(client, admin_headers):
    world = await build_world(client, admin_headers)
    body = await get_json(client, f"/api/v1/sessions/{world.sid}/attendance", admin_headers)
    assert list(body) == ["session", "records", "summary"]
    assert body["session"] == world.sid
    assert body["records"] == expected_records(world)
    assert body["summary"] == TOTAL


async def test_summary_per_unit(client, admin_headers):
    world = await build_world(client, admin_headers)
    body = await get_json(client, f"/api/v1/sessions/{world.sid}/summary", admin_headers)
    assert body["total"] == TOTAL
    rows = [
        (u["code"], u["name"], u["expected"], u["present"], u["late"], u["excused"],
         u["made_up"], u["absent"], u["rate"], u["completed"])
        for u in body["units"]
    ]  # fmt: skip
    assert rows == [
        ("D1", UNIT_NAMES["D1"], 10, 4, 1, 1, 2, 2, 0.7, 7),
        ("C1", UNIT_NAMES["C1"], 5, 3, 1, 0, 1, 0, 1.0, 5),
        ("C2", UNIT_NAMES["C2"], 5, 1, 0, 1, 1, 2, 0.4, 2),
    ]


async def test_make_up_session(client, admin_headers):
    world = await build_world(client, admin_headers)
    body = await get_json(client, f"/api/v1/sessions/{world.makeup}/attendance", admin_headers)
    site = world.sites["makeup"]["id"]
    got = [(r["member"], r["status"], r["site"], r["flags"]) for r in body["records"]]
    assert got == [
        ("DV-05", "present", site, []),
        ("dv-07", "absent", None, []),
        ("ĐV-08", "present", site, ["not_in_audience"]),
    ]
    assert body["summary"] == {
        "expected": 2,
        "present": 1,
        "late": 0,
        "excused": 0,
        "made_up": 0,
        "absent": 1,
        "rate": 0.5,
        "completed": 1,
    }
    # Its audience came from the excuses, not from units: the units of its members, with
    # their ancestors, and no unit without anyone expected.
    summary = await get_json(client, f"/api/v1/sessions/{world.makeup}/summary", admin_headers)
    assert [(u["code"], u["expected"]) for u in summary["units"]] == [
        ("P", 2),
        ("D1", 2),
        ("C1", 1),
        ("C2", 1),
    ]


async def test_an_open_session_is_a_preview(client, admin_headers):
    """Before the close `absent` only means no check-in yet; excuses already count."""
    world = await build_session(client, admin_headers)
    body = await get_json(client, f"/api/v1/sessions/{world.sid}/attendance", admin_headers)
    status = {r["member"]: r["status"] for r in body["records"]}
    assert status == {
        "AX-01": "present",
        "DV-01": "present",
        "DV-02": "late",
        "DV-03": "present",
        "DV-04": "present",
        "DV-05": "excused",
        "DV-06": "absent",
        "DV-09": "absent",
        "DV-10": "present",
        "dv-07": "excused",
        "ĐV-08": "absent",
    }
    dv04 = next(r for r in body["records"] if r["member"] == "DV-04")
    assert (dv04["last_out"], dv04["minutes"], dv04["flags"]) == (None, 120, ["multi_site"])
    assert body["summary"]["expected"] == 10
    assert body["summary"]["absent"] == 3


async def test_the_absences_report(client, admin_headers):
    world = await build_world(client, admin_headers)
    # An open session in the range does not count, even with everyone absent.
    await post(
        client,
        "/api/v1/sessions",
        {
            "title": "Phiên chưa đóng",
            "starts_at": world.start.isoformat(),
            "ends_at": world.end.isoformat(),
            "audience": ["P"],
        },
        admin_headers,
        201,
    )
    day = world.start.date()
    body = await get_json(client, f"/api/v1/reports/absences?from={day}&to={day}", admin_headers)
    assert body["sessions"] == [world.sid, world.makeup]
    assert body["members"] == [
        {"member": "DV-06", "full_name": "Ma Thị Phượng", "unit": "C2", "absent": 1,
         "sessions": [world.sid], "incomplete": 0, "incomplete_sessions": []},
        {"member": "DV-09", "full_name": "Hà Văn Ích", "unit": "C2", "absent": 1,
         "sessions": [world.sid], "incomplete": 0, "incomplete_sessions": []},
        # excused at S, so not absent there; but absent at the make-up session
        {"member": "dv-07", "full_name": "Đàm Văn Giang", "unit": "C2", "absent": 1,
         "sessions": [world.makeup], "incomplete": 0, "incomplete_sessions": []},
    ]  # fmt: skip
    later = day.replace(year=day.year + 1)
    body = await get_json(
        client, f"/api/v1/reports/absences?from={later}&to={later}", admin_headers
    )
    assert (body["sessions"], body["members"]) == ([], [])


SID_PATHS = ["attendance", "attendance.csv", "attendance.xlsx", "summary"]


@pytest.mark.parametrize("path", SID_PATHS)
@pytest.mark.parametrize(
    ("sid", "headers", "status", "code"),
    [
        ("999999", "admin", 404, "unknown_session"),
        ("abc", "admin", 404, "not_found"),
        ("{sid}", None, 401, "unauthorized"),
        ("{sid}", "bad", 401, "unauthorized"),
        ("{sid}", "site", 403, "forbidden"),
    ],
)
async def test_session_endpoint_errors(client, admin_headers, path, sid, headers, status, code):
    world = await build_session(client, admin_headers)
    sent = {
        "admin": admin_headers,
        None: {},
        "bad": auth("not-a-token"),
        "site": auth(world.sites["hall"]["token"]),
    }[headers]
    r = await client.get(f"/api/v1/sessions/{sid.format(sid=world.sid)}/{path}", headers=sent)
    assert r.status == status
    assert (await r.json())["error"]["code"] == code


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("", 400, "from"),
        ("from=2026-01-01", 400, "to"),
        ("to=2026-01-01", 400, "from"),
        ("from=2026-13-01&to=2026-12-31", 400, "from"),
        ("from=2026-01-01&to=31/12/2026", 400, "to"),
        ("from=yesterday&to=2026-12-31", 400, "from"),
        ("from=2026-02-01&to=2026-01-31", 400, "to"),
        ("from=2026-01-01T00:00:00&to=2026-12-31", 400, "from"),  # no offset
        ("from=2026-01-01&to=2026-01-01", 200, None),
        ("from=2026-01-01T00:00:00%2B07:00&to=2026-12-31T23:59:59%2B07:00", 200, None),
    ],
)
async def test_absences_report_dates(client, admin_headers, query, status, field):
    r = await client.get(f"/api/v1/reports/absences?{query}", headers=admin_headers)
    assert r.status == status, await r.text()
    body = await r.json()
    if status == 200:
        assert body["members"] == []
    else:
        assert body["error"]["code"] == "invalid"
        assert body["error"]["details"] == {"field": field}


async def test_absences_report_needs_a_signed_in_caller(client, admin_headers):
    world = await build_session(client, admin_headers)
    path = "/api/v1/reports/absences?from=2026-01-01&to=2026-12-31"
    r = await client.get(path, headers=auth(world.sites["hall"]["token"]))
    assert (r.status, (await r.json())["error"]["code"]) == (403, "forbidden")
    r = await client.get(path)
    assert r.status == 401
