"""`Store.count_expected_within` on both stores: a session's `expected` as a caller scoped to a
subtree sees it, for open sessions (the audience subtrees), closed ones (the frozen list) and
make-up sessions of the excused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from streamsvc.domain.models import Member, Unit
from streamsvc.ports import Store
from streamsvc.services.sessions import NewSessionData

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)

# P -> A -> A1, A2 and P -> B; Z is another province.
UNITS = [
    Unit("P", "Tỉnh ủy Bắc Kạn"),
    Unit("A", "Đảng bộ huyện Ba Bể", "P"),
    Unit("A1", "Chi bộ Đồng Phúc", "A"),
    Unit("A2", "Chi bộ Nam Mẫu", "A"),
    Unit("B", "Đảng bộ huyện Na Rì", "P"),
    Unit("Z", "Tỉnh ủy Thái Nguyên"),
]
MEMBERS = [
    Member("a-07", "Nguyễn Văn An", "A1"),
    Member("B-02", "Hoàng Thị Đào", "A1"),
    Member("B-10", "Nông Văn Đồng", "A2"),
    Member("b-01", "Triệu Thị Mai", "A"),
    Member("Đ-05", "Lý Văn Bình", "B"),
    Member("Z-01", "Ma Thị Hương", "Z"),
]
BY_CODE = {m.code: m for m in MEMBERS}


def planned(audience: tuple[str, ...], makeup_for: int | None = None) -> NewSessionData:
    return NewSessionData(
        "Nghị quyết Đại hội XIV", START, START + timedelta(hours=2), audience, 15, makeup_for
    )


async def roster(store: Store) -> None:
    await store.upsert_units(UNITS)
    await store.upsert_members(MEMBERS)


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
