"""`--demo` seeding on both stores: a populated province once, the same session on restart."""

from __future__ import annotations

from collections import Counter

from streamsvc.demo.seed import seed_demo
from streamsvc.demo.simulate import assign_members
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
