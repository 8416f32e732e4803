"""Every kind of bad input gets the contract's error shape and status, never a 500, and
writes nothing. One row per case, on both stores."""

from __future__ import annotations

import io
from typing import Any

import pytest
from builders import MEMBERS, UNITS, add_site, checkin, open_session, seed_roster

OK_SESSION = {
    "title": "Hội nghị",
    "starts_at": "2026-05-22T07:30:00+07:00",
    "ends_at": "2026-05-22T11:30:00+07:00",
    "audience": ["TU"],
}
BIG = b'{"units": [' + b'{"code": "X", "name": "' + b"x" * (9 * 1024 * 1024) + b'"}]}'

# (case, method, path, who, body, status, code); `who` is admin, site, none or garbage;
# a body of bytes is sent raw, anything else as JSON.
CASES: list[tuple[str, str, str, str, Any, int, str]] = [
    ("no token", "GET", "/api/v1/units", "none", None, 401, "unauthorized"),
    ("garbage token", "GET", "/api/v1/sessions", "garbage", None, 401, "unauthorized"),
    ("site token on admin", "POST", "/api/v1/units", "site", {"units": []}, 403, "forbidden"),
    ("admin token on checkins", "POST", "/api/v1/sessions/{sid}/checkins", "admin",
     {"items": []}, 403, "forbidden"),
    ("units not JSON", "POST", "/api/v1/units", "admin", b"{nope", 400, "bad_json"),
    ("units wrong shape", "POST", "/api/v1/units", "admin", {"units": "TU"}, 400, "invalid"),
    ("units body a list", "POST", "/api/v1/units", "admin", [1, 2], 400, "invalid"),
    ("unit missing name", "POST", "/api/v1/units", "admin",
     {"units": [{"code": "Z", "parent": None}]}, 400, "import_rejected"),
    ("unit unknown parent", "POST", "/api/v1/units", "admin",
     {"units": [{"code": "Z", "name": "Z", "parent": "NOPE"}]}, 400, "import_rejected"),
    ("member not an object", "POST", "/api/v1/members", "admin",
     {"members": ["10000001"]}, 400, "import_rejected"),
    ("member code a number", "POST", "/api/v1/members", "admin",
     {"members": [{"code": 5, "full_name": "A", "unit": "TU"}]}, 400, "import_rejected"),
    ("body too large", "POST", "/api/v1/units", "admin", BIG, 413, "payload_too_large"),
    ("limit not a number", "GET", "/api/v1/members?limit=abc", "admin", None, 400, "invalid"),
    ("limit too big", "GET", "/api/v1/members?limit=100000", "admin", None, 400, "invalid"),
    ("session not JSON", "POST", "/api/v1/sessions", "admin", b"[", 400, "bad_json"),
    ("session missing title", "POST", "/api/v1/sessions", "admin",
     {**OK_SESSION, "title": ""}, 400, "invalid"),
    ("session bad time", "POST", "/api/v1/sessions", "admin",
     {**OK_SESSION, "starts_at": "tomorrow"}, 400, "invalid"),
    ("session time without offset", "POST", "/api/v1/sessions", "admin",
     {**OK_SESSION, "starts_at": "2026-05-22T07:30:00"}, 400, "invalid"),
    ("session ends before start", "POST", "/api/v1/sessions", "admin",
     {**OK_SESSION, "ends_at": "2026-05-22T06:00:00+07:00"}, 400, "invalid"),
    ("session unknown unit", "POST", "/api/v1/sessions", "admin",
     {**OK_SESSION, "audience": ["NOPE"]}, 404, None),
    ("session late minutes wrong type", "POST", "/api/v1/sessions", "admin",
     {**OK_SESSION, "late_after_minutes": "15"}, 400, "invalid"),
    ("makeup of unknown session", "POST", "/api/v1/sessions", "admin",
     {**OK_SESSION, "makeup_for": 999999}, 404, None),
    ("unknown session", "GET", "/api/v1/sessions/999999", "admin", None, 404, None),
    ("session id not a number", "GET", "/api/v1/sessions/abc", "admin", None, 404, None),
    ("close unknown session", "POST", "/api/v1/sessions/999999/close", "admin", None, 404, None),
    ("site bad kind", "POST", "/api/v1/sessions/{sid}/sites", "admin",
     {"name": "A", "kind": "stadium", "unit": None, "capacity": None}, 400, "invalid"),
    ("site unknown unit", "POST", "/api/v1/sessions/{sid}/sites", "admin",
     {"name": "A", "kind": "hall", "unit": "NOPE", "capacity": None}, 404, None),
    ("site negative capacity", "POST", "/api/v1/sessions/{sid}/sites", "admin",
     {"name": "A", "kind": "hall", "unit": None, "capacity": -1}, 400, "invalid"),
    ("site on unknown session", "POST", "/api/v1/sessions/999999/sites", "admin",
     {"name": "A", "kind": "hall", "unit": None, "capacity": None}, 404, None),
    ("excuse missing member", "POST", "/api/v1/sessions/{sid}/excuses", "admin",
     {"reason": "x"}, 400, "invalid"),
    ("excuse unknown member", "POST", "/api/v1/sessions/{sid}/excuses", "admin",
     {"member": "99999999", "reason": "x"}, 404, None),
    ("checkins not a list", "POST", "/api/v1/sessions/{sid}/checkins", "site",
     {"items": {}}, 400, "invalid"),
    ("checkins not JSON", "POST", "/api/v1/sessions/{sid}/checkins", "site", b"x", 400,
     "bad_json"),
    ("checkins too many", "POST", "/api/v1/sessions/{sid}/checkins", "site",
     {"items": [checkin("10000001") for _ in range(1001)]}, 400, "invalid"),
    ("unknown route", "GET", "/api/v1/nothing", "admin", None, 404, None),
    ("wrong method", "DELETE", "/api/v1/units", "admin", None, 405, None),
]  # fmt: skip


@pytest.fixture
async def seeded(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    site = await add_site(client, admin_headers, session["id"])
    return session["id"], site["token"]


async def _snapshot(client, admin_headers, sid: int) -> tuple:
    units = await (await client.get("/api/v1/units", headers=admin_headers)).json()
    members = await (await client.get("/api/v1/members?limit=1000", headers=admin_headers)).json()
    sessions = await (await client.get("/api/v1/sessions", headers=admin_headers)).json()
    sites = await (await client.get(f"/api/v1/sessions/{sid}/sites", headers=admin_headers)).json()
    return units, members, sessions, sites


@pytest.mark.parametrize(
    ("method", "path", "who", "body", "status", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_input_gets_the_error_shape_and_changes_nothing(
    client, admin_headers, seeded, method, path, who, body, status, code
):
    sid, site_token = seeded
    headers = {
        "admin": admin_headers,
        "site": {"Authorization": f"Bearer {site_token}"},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "none": {},
    }[who]
    before = await _snapshot(client, admin_headers, sid)
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["data"] = io.BytesIO(body)
        kwargs["headers"] = {**headers, "Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    r = await client.request(method, path.format(sid=sid), **kwargs)
    assert r.status == status, await r.text()
    assert r.content_type == "application/json"
    error = (await r.json())["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    assert await _snapshot(client, admin_headers, sid) == before


async def test_members_and_units_are_unchanged_by_a_rejected_csv(client, admin_headers, seeded):
    sid, _ = seeded
    before = await _snapshot(client, admin_headers, sid)
    bad = b"code,full_name,unit\n40000001,Ok Name,CB1\n40000002,,CB1\n"
    r = await client.post(
        "/api/v1/members", data=bad, headers={**admin_headers, "Content-Type": "text/csv"}
    )
    assert r.status == 400
    assert [d["row"] for d in (await r.json())["error"]["details"]] == [2]
    r = await client.post(
        "/api/v1/units",
        data=b"code;name\nA;B\n",
        headers={**admin_headers, "Content-Type": "text/csv"},
    )
    assert (r.status, (await r.json())["error"]["code"]) == (400, "bad_csv")
    assert await _snapshot(client, admin_headers, sid) == before
    assert len(before[1]["members"]) == len(MEMBERS) and len(before[0]["units"]) == len(UNITS)
