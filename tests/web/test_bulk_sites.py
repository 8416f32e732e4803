"""Many sites in one upload (`POST /api/v1/sessions/{sid}/sites` with `{"sites": [...]}` or
CSV), on both stores: all or nothing, every bad row listed, each token for its own site."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from builders import checkin, open_session, seed_roster
from conftest import ADMIN

CSV = {"Content-Type": "text/csv"}


def sites_json(n: int) -> list[dict]:
    units = [None, "TU", "DB1", "CB1", "CB3"]
    return [
        {"name": f"Điểm cầu {i}", "kind": "bridge", "unit": units[i % 5], "capacity": i}
        for i in range(1, n + 1)
    ]


def as_csv(rows: list[dict]) -> str:
    lines = ["name,kind,unit,capacity"]
    for r in rows:
        unit = r["unit"] or ""
        capacity = "" if r["capacity"] is None else r["capacity"]
        lines.append(f"{r['name']},{r['kind']},{unit},{capacity}")
    return "\n".join(lines) + "\n"


async def upload(client, headers, sid: int, rows: list[dict], form: str):
    url = f"/api/v1/sessions/{sid}/sites"
    if form == "csv":
        return await client.post(url, data=as_csv(rows), headers={**headers, **CSV})
    return await client.post(url, json={"sites": rows}, headers=headers)


async def listed(client, headers, sid: int) -> list[dict]:
    r = await client.get(f"/api/v1/sessions/{sid}/sites", headers=headers)
    assert r.status == 200
    return (await r.json())["sites"]


@pytest.fixture
async def sid(client, admin_headers) -> int:
    await seed_roster(client, admin_headers)
    return (await open_session(client, admin_headers, audience=["TU"]))["id"]


async def hello(client, token: str):
    ws = await client.ws_connect("/ws/checkin")
    await ws.send_json({"type": "hello", "token": token, "client": "test-device"})
    return ws, await ws.receive_json()


@pytest.mark.parametrize("form", ["json", "csv"])
async def test_every_site_gets_its_own_token_that_checks_in_at_that_site_only(
    client, admin_headers, sid, form
):
    rows = sites_json(40)
    r = await upload(client, admin_headers, sid, rows, form)
    assert r.status == 201, await r.text()
    created = (await r.json())["sites"]
    assert [{k: s[k] for k in ("name", "kind", "unit", "capacity")} for s in created] == rows
    assert all(set(s) == {"id", "name", "kind", "unit", "capacity", "token"} for s in created)
    assert len({s["token"] for s in created}) == 40 and len({s["id"] for s in created}) == 40
    assert [(s["id"], s["name"]) for s in await listed(client, admin_headers, sid)] == [
        (s["id"], s["name"]) for s in created
    ]

    for n, site in enumerate([created[0], created[17], created[-1]]):
        ws, welcome = await hello(client, site["token"])
        assert welcome["type"] == "welcome" and welcome["site"]["id"] == site["id"]
        await ws.send_json(checkin(f"1000000{n + 1}"))
        assert (await ws.receive_json())["results"][0]["result"] == "accepted"
        await ws.close()
    live = await (await client.get(f"/api/v1/sessions/{sid}/live", headers=admin_headers)).json()
    present = {s["id"]: s["present"] for s in live["sites"]}
    assert [present[s["id"]] for s in (created[0], created[17], created[-1])] == [1, 1, 1]
    assert sum(present.values()) == 3


# (rows, bad row numbers and a piece of each error); the good rows around them make sure
# a rejection applies nothing
BAD = [
    ("missing name", [{"kind": "hall"}], [(2, "missing name")]),
    ("empty name", [{"name": "  ", "kind": "hall"}], [(2, "missing name")]),
    ("unknown kind", [{"name": "X", "kind": "stadium"}], [(2, "kind must be one of")]),
    ("no kind", [{"name": "X"}], [(2, "kind must be one of")]),
    ("unknown unit", [{"name": "X", "kind": "hall", "unit": "NOPE"}], [(2, "unknown unit NOPE")]),
    ("negative capacity", [{"name": "X", "kind": "hall", "capacity": -1}], [(2, "capacity")]),
    ("word capacity", [{"name": "X", "kind": "hall", "capacity": "many"}], [(2, "capacity")]),
    ("same name", [{"name": "Điểm cầu 1", "kind": "hall"}], [(2, "duplicate name")]),
    (
        "several",
        [{"name": "X", "kind": "hall", "unit": "NOPE"}, {"name": "", "kind": "hall"}],
        [(2, "unknown unit"), (3, "missing name")],
    ),
]


@pytest.mark.parametrize("form", ["json", "csv"])
@pytest.mark.parametrize(("bad", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
async def test_one_bad_row_rejects_the_upload_and_lists_every_bad_row(
    client, admin_headers, sid, form, bad, expected
):
    good = sites_json(1)
    rows = [good[0], *[{"unit": None, "capacity": None, **b} for b in bad], *sites_json(3)[1:]]
    if form == "csv":
        rows = [{**r, "name": r.get("name", ""), "kind": r.get("kind", "")} for r in rows]
    r = await upload(client, admin_headers, sid, rows, form)
    assert r.status == 400, await r.text()
    error = (await r.json())["error"]
    assert error["code"] == "import_rejected"
    details = error["details"]
    assert [d["row"] for d in details] == [n for n, _ in expected]
    for d, (_, piece) in zip(details, expected, strict=True):
        assert piece in d["error"]
    assert await listed(client, admin_headers, sid) == []


@pytest.mark.parametrize(
    ("content", "headers", "error"),
    [
        ("", {}, "invalid"),  # JSON: {"sites": 5}
        ("name,kind\nA,hall\n", CSV, "bad_csv"),
    ],
)
async def test_a_body_that_is_not_a_list_of_sites_is_refused(
    client, admin_headers, sid, content, headers, error
):
    url = f"/api/v1/sessions/{sid}/sites"
    if headers:
        r = await client.post(url, data=content, headers={**admin_headers, **headers})
    else:
        r = await client.post(url, json={"sites": 5}, headers=admin_headers)
    assert r.status == 400
    assert (await r.json())["error"]["code"] == error
    assert await listed(client, admin_headers, sid) == []


async def test_over_fifty_thousand_sites_are_refused_whole(client, admin_headers, sid):
    rows = [{"name": f"S{i}", "kind": "hall"} for i in range(50_001)]
    body = io.BytesIO(json.dumps({"sites": rows}).encode())  # a large bytes body warns
    r = await client.post(
        f"/api/v1/sessions/{sid}/sites",
        data=body,
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert r.status == 400
    error = (await r.json())["error"]
    assert error["code"] == "import_rejected"
    assert error["details"] == [{"row": 50_001, "error": "more than 50000 sites in one upload"}]
    assert await listed(client, admin_headers, sid) == []


@pytest.mark.parametrize("form", ["json", "csv"])
async def test_a_closed_session_takes_no_upload(client, admin_headers, sid, form):
    r = await client.post(f"/api/v1/sessions/{sid}/close", headers=admin_headers)
    assert r.status == 200
    r = await upload(client, admin_headers, sid, sites_json(2), form)
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "session_closed"
    assert await listed(client, admin_headers, sid) == []


async def test_an_unknown_session_is_404(client, admin_headers, sid):
    r = await upload(client, admin_headers, 999_999, sites_json(2), "json")
    assert r.status == 404
    assert (await r.json())["error"]["code"] == "unknown_session"


async def test_one_site_still_answers_as_one_site(client, admin_headers, sid):
    r = await client.post(
        f"/api/v1/sessions/{sid}/sites",
        json={"name": "Hội trường", "kind": "hall", "unit": "TU", "capacity": 300},
        headers=admin_headers,
    )
    assert r.status == 201
    body = await r.json()
    assert set(body) == {"id", "session", "name", "kind", "unit", "capacity", "token"}
    assert body["session"] == sid and body["name"] == "Hội trường"


async def test_a_watching_monitor_sees_every_uploaded_site(client, admin_headers, sid):
    ws = await client.ws_connect("/ws/monitor")
    await ws.send_json({"type": "hello", "token": ADMIN, "session": sid})
    snapshot = await asyncio.wait_for(ws.receive_json(), 10)
    assert snapshot["type"] == "snapshot" and snapshot["live"]["sites"] == []
    r = await upload(client, admin_headers, sid, sites_json(30), "json")
    assert r.status == 201
    ids = {s["id"] for s in (await r.json())["sites"]}
    seen: set[int] = set()
    for _ in range(50):
        if seen == ids:
            break
        msg = await asyncio.wait_for(ws.receive_json(), 10)
        seen |= {s["id"] for s in msg.get("sites") or msg.get("live", {}).get("sites", [])}
    assert seen == ids
    await ws.close()
