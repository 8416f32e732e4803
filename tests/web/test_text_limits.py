"""Input PostgreSQL cannot take (a NUL character) or no store can (a number past 64 bits) is
a 400 in the contract's error shape on both stores, never a 500: schemathesis found the NUL."""

from __future__ import annotations

import pytest
from builders import MEMBERS, UNITS

SID = "/api/v1/sessions/1"
SESSION = {
    "title": "Hội nghị",
    "starts_at": "2026-05-22T07:30:00+07:00",
    "ends_at": "2026-05-22T11:30:00+07:00",
    "audience": [UNITS[0]["code"]],
}


@pytest.fixture
async def world(client, admin_headers):
    for path, body in (
        ("/api/v1/units", {"units": UNITS}),
        ("/api/v1/members", {"members": MEMBERS}),
        ("/api/v1/sessions", SESSION),
    ):
        r = await client.post(path, json=body, headers=admin_headers)
        assert r.status in (200, 201), await r.text()
    return client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/units", {"units": [{"code": "U\x00", "name": "x", "parent": None}]}),
        (
            "post",
            "/api/v1/members",
            {"members": [{"code": "M\x00", "full_name": "x", "unit": "x"}]},
        ),
        ("post", "/api/v1/sessions", {**SESSION, "title": "a\x00b"}),
        ("post", "/api/v1/sessions", {**SESSION, "audience": ["\x00"]}),
        ("post", f"{SID}/sites", {"name": "Hall", "kind": "hall", "unit": "\x00"}),
        ("post", f"{SID}/excuses", {"member": "\x00", "reason": "sick"}),
        ("get", "/api/v1/members?q=%00", None),
        ("get", "/api/v1/members?unit=a%00", None),
        ("get", "/api/v1/members?offset=100000000000000000000", None),
        ("get", "/api/v1/members?limit=100000000000000000000", None),
        ("get", "/api/v1/reports/absences?from=2026-01-01%00&to=2026-02-01", None),
    ],
)
async def test_text_no_store_can_hold_is_a_400(world, admin_headers, method, path, body):
    r = await world.request(method, path, json=body, headers=admin_headers)
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] in ("invalid", "bad_json")


async def test_a_csv_upload_with_nul_is_bad_csv(world, admin_headers):
    r = await world.post(
        "/api/v1/units",
        data=b"code,name,parent\nU\x00,x,\n",
        headers={**admin_headers, "Content-Type": "text/csv"},
    )
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "bad_csv"
