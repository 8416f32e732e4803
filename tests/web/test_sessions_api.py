"""Sessions, sites and excuses on both stores, as the contract says."""

from __future__ import annotations

from builders import add_site, checkin, open_session, seed_roster


async def test_session_expected_counts_the_audience_subtrees(client, admin_headers):
    await seed_roster(client, admin_headers)
    whole = await open_session(client, admin_headers, audience=["TU"])
    assert (whole["expected"], whole["state"], whole["audience"]) == (6, "open", ["TU"])
    part = await open_session(client, admin_headers, audience=["CB1", "DB2"])
    assert part["expected"] == 4
    overlapping = await open_session(client, admin_headers, audience=["DB1", "CB1"])
    assert overlapping["expected"] == 4
    r = await client.get("/api/v1/sessions", headers=admin_headers)
    assert [s["id"] for s in (await r.json())["sessions"]] == [
        whole["id"],
        part["id"],
        overlapping["id"],
    ]
    r = await client.get(f"/api/v1/sessions/{part['id']}", headers=admin_headers)
    assert await r.json() == part


async def test_site_token_is_shown_once_and_works_only_for_its_site(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    other = await open_session(client, admin_headers)
    site = await add_site(client, admin_headers, session["id"], unit="DB1", kind="bridge")
    assert set(site) >= {"id", "name", "kind", "unit", "capacity", "token"}
    assert (site["kind"], site["unit"], site["capacity"]) == ("bridge", "DB1", 300)
    r = await client.get(f"/api/v1/sessions/{session['id']}/sites", headers=admin_headers)
    listed = (await r.json())["sites"]
    assert [s["id"] for s in listed] == [site["id"]]
    assert "token" not in listed[0]
    token = {"Authorization": f"Bearer {site['token']}"}
    r = await client.post(
        f"/api/v1/sessions/{session['id']}/checkins",
        json={"items": [checkin("10000001")]},
        headers=token,
    )
    assert (await r.json())["results"][0]["result"] == "accepted"
    r = await client.post(
        f"/api/v1/sessions/{other['id']}/checkins",
        json={"items": [checkin("10000001")]},
        headers=token,
    )
    assert r.status == 403
    r = await client.get("/api/v1/sessions", headers=token)
    assert r.status == 403


async def test_excuses_and_the_rules_around_them(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["DB1"])
    sid = session["id"]
    site = await add_site(client, admin_headers, sid)
    r = await client.post(
        f"/api/v1/sessions/{sid}/excuses",
        json={"member": "10000002", "reason": "Đi công tác"},
        headers=admin_headers,
    )
    assert r.status == 201
    await client.post(
        f"/api/v1/sessions/{sid}/checkins",
        json={"items": [checkin("10000001")]},
        headers={"Authorization": f"Bearer {site['token']}"},
    )
    r = await client.post(
        f"/api/v1/sessions/{sid}/excuses",
        json={"member": "10000001", "reason": "late"},
        headers=admin_headers,
    )
    assert (r.status, (await r.json())["error"]["code"]) == (409, "already_present")
    r = await client.post(
        f"/api/v1/sessions/{sid}/excuses",
        json={"member": "10000005", "reason": "not in DB1"},
        headers=admin_headers,
    )
    assert r.status == 409
    r = await client.post(
        f"/api/v1/sessions/{sid}/excuses",
        json={"member": "99999999", "reason": "?"},
        headers=admin_headers,
    )
    assert r.status == 404


async def test_close_then_a_makeup_session_defaults_to_the_excused(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["TU"])
    sid = session["id"]
    for member in ("10000003", "10000005"):
        r = await client.post(
            f"/api/v1/sessions/{sid}/excuses",
            json={"member": member, "reason": "Ốm"},
            headers=admin_headers,
        )
        assert r.status == 201
    r = await client.post(f"/api/v1/sessions/{sid}/close", headers=admin_headers)
    closed = await r.json()
    assert (r.status, closed["state"]) == (200, "closed")
    assert closed["closed_at"] is not None
    makeup = await open_session(client, admin_headers, audience=[], makeup_for=sid)
    assert (makeup["makeup_for"], makeup["expected"]) == (sid, 2)
    r = await client.post(
        f"/api/v1/sessions/{sid}/sites",
        json={"name": "Late", "kind": "hall", "unit": None, "capacity": None},
        headers=admin_headers,
    )
    assert (r.status, (await r.json())["error"]["code"]) == (409, "session_closed")
