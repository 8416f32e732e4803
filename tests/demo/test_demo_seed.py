"""`--demo` seeding on both stores: a populated province once, the same session on restart,
and a user at each level of the cascade."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace

from argon2 import PasswordHasher

from streamsvc.demo.run import prepare_demo
from streamsvc.demo.seed import seed_demo
from streamsvc.demo.simulate import assign_members
from streamsvc.demo.users import DEMO_USERS
from streamsvc.services.tokens import hash_token


async def test_seed_fills_an_empty_database_once(store):
    first = await seed_demo(store, members=1500)
    assert first is not None
    session_id, sites = first
    session = await store.get_session(session_id)
    assert session is not None and session.expected == 1500 and session.is_open
    assert len(sites) >= 30
    assert {d.site.kind for d in sites} == {"hall", "bridge", "broadcast", "self_study"}
    for demo in sites[:3]:
        found = await store.site_by_token_hash(hash_token(demo.token))
        assert found is not None and found.id == demo.site.id

    again = await seed_demo(store, members=1500)
    assert again is not None
    assert again[0] == session_id
    assert [(d.site.id, d.token) for d in again[1]] == [(d.site.id, d.token) for d in sites]
    assert len(await store.list_sessions()) == 1


async def test_every_member_comes_to_at_most_one_site_covering_their_unit(store):
    seeded = await seed_demo(store, members=1500)
    assert seeded is not None
    session_id, sites = seeded
    units = {u.code: u for u in await store.list_units()}
    members = [m async for m in store.iter_expected_members(session_id)]
    assigned = assign_members(sites, members, units, seed=1)
    counts = Counter(code for codes in assigned.values() for code in codes)
    assert set(counts) == {m.code for m in members}
    assert set(counts.values()) == {1}
    unit_of = {m.code: m.unit for m in members}
    by_id = {d.site.id: d.site for d in sites}
    for site_id, codes in assigned.items():
        site = by_id[site_id]
        for code in codes:
            if site.unit is not None:
                chain, u = set(), unit_of[code]
                while u is not None:
                    chain.add(u)
                    u = units[u].parent
                assert site.unit in chain


async def test_seed_leaves_a_real_roster_alone(store):
    from streamsvc.domain.models import Unit

    await store.upsert_units([Unit("X", "Real unit", None)])
    assert await seed_demo(store, members=100) is None
    assert [u.code for u in await store.list_units()] == ["X"]


async def test_the_demo_has_a_user_at_each_level_of_the_cascade(store):
    """Printed with their passwords in the banner; made once, left alone on a restart."""
    seeded = await seed_demo(store, members=1500)  # a small province; prepare_demo reuses it
    assert seeded is not None
    out = io.StringIO()
    coordinators = await prepare_demo(store, "http://demo.test", "admin-token", out)
    assert coordinators is not None
    coordinators.close()  # the simulated coordinators are not run here

    users = {u.login: u for u in await store.list_users()}
    cell = users["cell-secretary"].unit
    assert {login: (u.role, u.unit) for login, u in users.items()} == {
        "province-admin": ("admin", "BK"),
        "district-organizer": ("organizer", "BK.BT"),
        "cell-secretary": ("organizer", cell),
        "district-viewer": ("viewer", "BK.CD"),
    }
    units = {u.code: u for u in await store.list_units()}
    assert units[cell].parent == "BK.BT"  # a cell of the district, with a viewing point
    assert cell in {d.site.unit for d in seeded[1]}
    banner = out.getvalue()
    assert "Sign in at http://demo.test/" in banner
    for demo in DEMO_USERS:
        assert f"{demo.login} / {demo.password}" in banner
        assert PasswordHasher().verify(users[demo.login].password_hash, demo.password)
    assert f"organizer of {units[cell].name} ({cell})" in banner
    entries = [e async for e in store.iter_audit(None, None, action="user_created")]
    assert sorted((e.actor, e.target) for e in entries) == [
        ("demo", login) for login in sorted(users)
    ]

    # a password changed since is kept on a restart, and nobody is made twice
    viewer = users["district-viewer"]
    await store.save_user(replace(viewer, password_hash=PasswordHasher().hash("changed-since")))
    again = await prepare_demo(store, "http://demo.test", "admin-token", io.StringIO())
    assert again is not None
    again.close()
    after = {u.login: u for u in await store.list_users()}
    assert set(after) == set(users)
    assert PasswordHasher().verify(after["district-viewer"].password_hash, "changed-since")
    assert after["province-admin"].password_hash == users["province-admin"].password_hash
    assert len([e async for e in store.iter_audit(None, None, action="user_created")]) == 4


async def test_no_demo_users_next_to_a_real_roster(store):
    from streamsvc.domain.models import Unit

    await store.upsert_units([Unit("X", "Real unit", None)])
    assert await prepare_demo(store, "http://demo.test", None, io.StringIO()) is None
    assert await store.list_users() == []
