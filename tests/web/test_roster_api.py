"""The roster endpoints on both stores: imports (JSON and CSV, all-or-nothing), listing, search."""

from __future__ import annotations

from builders import MEMBERS, UNITS, seed_roster


async def test_import_units_and_members_reports_created_then_updated(client, admin_headers):
    r = await client.post("/api/v1/units", json={"units": UNITS}, headers=admin_headers)
    assert (r.status, await r.json()) == (200, {"created": 6, "updated": 0})
    r = await client.post("/api/v1/members", json={"members": MEMBERS}, headers=admin_headers)
    assert (r.status, await r.json()) == (200, {"created": 6, "updated": 0})
    renamed = [{**MEMBERS[0], "full_name": "Nguyễn Văn Ân"}, {**MEMBERS[1]}]
    r = await client.post("/api/v1/members", json={"members": renamed}, headers=admin_headers)
    assert await r.json() == {"created": 0, "updated": 2}
    r = await client.get("/api/v1/members?q=10000001", headers=admin_headers)
    assert (await r.json())["members"][0]["full_name"] == "Nguyễn Văn Ân"


async def test_csv_import_with_bom_and_vietnamese_names(client, admin_headers):
    units = "\ufeffcode,name,parent\nTU,Tỉnh ủy,\nCB1,Chi bộ Đồng Phúc,TU\n"
    r = await client.post(
        "/api/v1/units",
        data=units.encode(),
        headers={**admin_headers, "Content-Type": "text/csv"},
    )
    assert (r.status, await r.json()) == (200, {"created": 2, "updated": 0})
    members = "code,full_name,unit\n20000001,Đồng Thị Lan,CB1\n"
    r = await client.post(
        "/api/v1/members",
        data=members.encode(),
        headers={**admin_headers, "Content-Type": "text/csv"},
    )
    assert r.status == 200
    r = await client.get("/api/v1/units", headers=admin_headers)
    assert {"code": "TU", "name": "Tỉnh ủy", "parent": None} in (await r.json())["units"]


async def test_an_import_with_bad_rows_lists_every_one_and_applies_nothing(client, admin_headers):
    await seed_roster(client, admin_headers)
    rows = [
        {"code": "30000001", "full_name": "Đinh Văn Tú", "unit": "CB1"},  # good
        {"code": "30000002", "full_name": "Lục Thị Vân", "unit": "NOPE"},  # unknown unit
        {"code": "30000003", "unit": "CB1"},  # missing name
        {"code": "30000001", "full_name": "Again", "unit": "CB1"},  # duplicate in upload
    ]
    r = await client.post("/api/v1/members", json={"members": rows}, headers=admin_headers)
    assert r.status == 400
    body = await r.json()
    assert [d["row"] for d in body["error"]["details"]] == [2, 3, 4]
    r = await client.get("/api/v1/members?q=30000001", headers=admin_headers)
    assert (await r.json())["total"] == 0


async def test_a_unit_cycle_is_rejected_whole(client, admin_headers):
    await seed_roster(client, admin_headers)
    rows = [
        {"code": "X1", "name": "X1", "parent": "X2"},
        {"code": "X2", "name": "X2", "parent": "X1"},
    ]
    r = await client.post("/api/v1/units", json={"units": rows}, headers=admin_headers)
    assert r.status == 400
    assert (await r.json())["error"]["details"]
    r = await client.get("/api/v1/units", headers=admin_headers)
    assert "X1" not in {u["code"] for u in (await r.json())["units"]}


async def test_search_ignores_vietnamese_accents_and_covers_the_unit_subtree(client, admin_headers):
    await seed_roster(client, admin_headers)

    async def codes(query: str) -> list[str]:
        r = await client.get(f"/api/v1/members?{query}", headers=admin_headers)
        assert r.status == 200
        return [m["code"] for m in (await r.json())["members"]]

    assert await codes("q=nguyen") == ["10000001"]
    assert await codes("q=dong") == ["10000003"]  # Đồng
    assert await codes("q=DAO") == ["10000002"]
    assert await codes("q=1000000") == [m["code"] for m in MEMBERS]
    assert await codes("unit=DB1") == ["10000001", "10000002", "10000003", "10000004"]
    assert await codes("unit=CB3&q=huong") == ["10000006"]
    r = await client.get("/api/v1/members?unit=TU&limit=2&offset=2", headers=admin_headers)
    body = await r.json()
    assert body["total"] == 6
    assert [m["code"] for m in body["members"]] == ["10000003", "10000004"]
