"""`Store.count_expected_within` on both stores: a session's `expected` as a caller scoped to a
subtree sees it, for open sessions (the audience subtrees), closed ones (the frozen list) and
make-up sessions of the excused."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from store_roster import BY_CODE, START, planned, roster

from streamsvc.domain.models import Member, Unit
from streamsvc.ports import Store
from streamsvc.storage import open_store


async def within(store: Store, session_id: int, *roots: str) -> list[int]:
    return [(await store.count_expected_within([session_id], r))[session_id] for r in roots]


async def test_an_open_session_counts_the_audience_members_in_the_subtree(store):
    await roster(store)
    province = await store.create_session(planned(("P",)), from_excused_of=None)
    assert province.expected == 5
    assert await within(store, province.id, "P", "A", "A1", "A2", "B", "Z") == [5, 4, 2, 1, 1, 0]
    # a scope above the audience sees the whole audience, one beside it nothing
    district = await store.create_session(planned(("A",)), from_excused_of=None)
    assert await within(store, district.id, "P", "A", "A2", "B") == [4, 4, 1, 0]
    # two audience units, one subtree inside the other: each member once
    both = await store.create_session(planned(("A", "A1", "Z")), from_excused_of=None)
    assert both.expected == 5
    assert await within(store, both.id, "P", "A", "A1", "Z") == [4, 4, 2, 1]


async def test_many_sessions_in_one_call_and_unknown_ones_count_nothing(store):
    await roster(store)
    first = await store.create_session(planned(("P",)), from_excused_of=None)
    second = await store.create_session(planned(("B", "Z")), from_excused_of=None)
    assert await store.count_expected_within([first.id, second.id, 999], "A") == {
        first.id: 4,
        second.id: 0,
        999: 0,
    }
    assert await store.count_expected_within([first.id, second.id], "P") == {
        first.id: 5,
        second.id: 1,
    }
    assert await store.count_expected_within([first.id], "no-such-unit") == {first.id: 0}
    assert await store.count_expected_within([], "A") == {}


async def test_a_closed_session_counts_its_frozen_list_by_each_members_unit(store):
    await roster(store)
    session = await store.create_session(planned(("A",)), from_excused_of=None)
    await store.close_session(session.id, START + timedelta(hours=3))
    # after the close: a newcomer in A1 is not expected; B-10 moves from A2 to B
    await store.upsert_members(
        [Member("n-01", "Người mới", "A1"), replace(BY_CODE["B-10"], unit="B")]
    )
    assert (await store.get_session(session.id)).expected == 4
    assert await within(store, session.id, "P", "A", "A1", "A2", "B") == [4, 3, 2, 0, 1]


async def test_a_make_up_of_the_excused_counts_them_in_the_subtree(store):
    await roster(store)
    original = await store.create_session(planned(("P",)), from_excused_of=None)
    for member in ("a-07", "B-10", "Đ-05"):
        assert await store.add_excuse(original.id, member, "Ốm")
    makeup = await store.create_session(planned((), original.id), from_excused_of=original.id)
    assert makeup.expected == 3
    assert await within(store, makeup.id, "P", "A", "A1", "B", "Z") == [3, 2, 1, 1, 0]


async def test_expected_follows_every_roster_import_even_one_made_by_another_instance(
    store, database_url
):
    """`expected` is kept between reads (counting 2M members costs most of a second); a
    member or unit import, on this store or on another instance's, is seen at the next read."""
    await roster(store)
    session = await store.create_session(planned(("A",)), from_excused_of=None)
    assert (await store.get_session(session.id)).expected == 4
    await store.upsert_members([Member("n-01", "Người mới", "A1")])
    assert (await store.get_session(session.id)).expected == 5
    other = open_store(database_url)  # another instance on the same database
    await other.open()
    try:
        assert (await other.get_session(session.id)).expected == 5
        await other.upsert_members([replace(BY_CODE["B-10"], unit="B")])  # leaves A
        assert (await store.get_session(session.id)).expected == 4
        await other.upsert_units([Unit("B", "Đảng bộ huyện Na Rì", "A")])  # B moves under A
        assert [s.expected for s in await store.list_sessions() if s.id == session.id] == [6]
        assert (await store.get_session(session.id)).expected == 6
    finally:
        await other.close()
    # the close freezes the list: later imports no longer move it
    await store.close_session(session.id, START + timedelta(hours=3))
    assert (await store.get_session(session.id)).expected == 6
    await store.upsert_members([Member("n-02", "Người mới nữa", "A2")])
    assert (await store.get_session(session.id)).expected == 6


async def test_a_big_member_import_leaves_fresh_planner_statistics(store, database_url):
    """PostgreSQL: a national roster import refreshes the members' statistics at once, as
    autovacuum may be off or minutes behind (the day's first queries plan on them)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("planner statistics are PostgreSQL's")
    import asyncpg

    from streamsvc.storage.postgres import ANALYZE_FROM

    await store.upsert_units([Unit("P", "Tỉnh ủy")])
    pg = await asyncpg.connect(database_url)
    try:
        # the planner's row count (pg_class, written by ANALYZE in its transaction; -1: never
        # analyzed)
        rows = "SELECT reltuples FROM pg_class WHERE relname = 'members'"
        await store.upsert_members([Member("small", "Một người", "P")])
        assert await pg.fetchval(rows) == -1  # a small import leaves it to autovacuum
        await store.upsert_members(
            [Member(f"M{i:07d}", f"Đảng viên {i}", "P") for i in range(ANALYZE_FROM)]
        )
        assert await pg.fetchval(rows) == ANALYZE_FROM + 1
    finally:
        await pg.close()


async def test_expected_members_in_units_is_the_audience_narrowed_to_them(store):
    """A check-in page's list (`expected_members_in`): the expected members whose unit is one
    of the site's subtree, by code: open (audience subtrees), closed (the frozen list) and a
    make-up session of the excused."""
    await roster(store)

    async def listed(session_id: int, *units: str) -> list[str]:
        return [m.code for m in await store.expected_members_in(session_id, list(units))]

    session = await store.create_session(planned(("A",)), from_excused_of=None)
    assert await listed(session.id, "A1", "A2") == ["B-02", "B-10", "a-07"]
    assert await listed(session.id, "A", "A1", "A2", "B", "Z") == ["B-02", "B-10", "a-07", "b-01"]
    assert await listed(session.id, "B", "Z") == []  # outside the audience
    assert await listed(session.id) == []
    member = (await store.expected_members_in(session.id, ["A2"]))[0]
    assert (member.code, member.full_name, member.unit) == ("B-10", "Nông Văn Đồng", "A2")
    # after the close the frozen list: a newcomer in A1 is not listed, B-10 moved to B is
    await store.close_session(session.id, START + timedelta(hours=3))
    await store.upsert_members(
        [Member("n-01", "Người mới", "A1"), replace(BY_CODE["B-10"], unit="B")]
    )
    assert await listed(session.id, "A1") == ["B-02", "a-07"]
    assert await listed(session.id, "B") == ["B-10"]
    # a make-up session of the excused lists them by their unit
    original = await store.create_session(planned(("P",)), from_excused_of=None)
    for code in ("a-07", "Đ-05"):
        assert await store.add_excuse(original.id, code, "Ốm")
    makeup = await store.create_session(planned((), original.id), from_excused_of=original.id)
    assert await listed(makeup.id, "A1", "A2") == ["a-07"]
    assert await listed(makeup.id, "B") == ["Đ-05"]
