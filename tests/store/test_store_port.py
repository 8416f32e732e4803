"""Every method of the Store port, on both stores: what the services rely on.

`test_store.py` covers upsert counts, basic search, the expected members of an open
session, storing an event id once and two instances racing; this file covers the rest of
the port. Times are fixed and `now` is handed to `commit_events`, as the services do.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from store_roster import BY_CODE, END, START, UNITS, planned, roster

from streamsvc.domain.checkin import Incoming, Outcome, Presence, decide_batch
from streamsvc.domain.models import Event, Member, NewSite, Session, Site, Unit
from streamsvc.errors import StoreUnavailable
from streamsvc.ports import Store
from streamsvc.services.sessions import NewSessionData
from streamsvc.storage import migrations, open_store

NOW = START + timedelta(minutes=20)
SEC = timedelta(seconds=1)


async def open_session(store: Store, audience: tuple[str, ...] = ("P",)) -> tuple[Session, Site]:
    """A session with one hall."""
    session = await store.create_session(planned(audience), from_excused_of=None)
    hall = await store.create_site(
        NewSite(session.id, "Hội trường", "hall", None, None, f"h{session.id}")
    )
    return session, hall


def checkin(event_id: str, member: str, minutes: float = 5) -> Incoming:
    return Incoming(event_id, "checkin", START + timedelta(minutes=minutes), member=member)


def void(event_id: str, target: str) -> Incoming:
    return Incoming(event_id, "void", target=target)


async def commit(
    store: Store, session: Session, site: Site, *events: Incoming, now: datetime = NOW
) -> list[Outcome]:
    outcomes, _ = await store.commit_events(
        [(session.id, site, e) for e in events], decide_batch, now
    )
    return outcomes


async def expected_codes(store: Store, session_id: int) -> list[str]:
    return [m.code async for m in store.iter_expected_members(session_id)]


async def events_of(store: Store, session_id: int, *, by_member: bool = False) -> list[Event]:
    return [e async for e in store.iter_events(session_id, by_member=by_member)]


# -- lifecycle --------------------------------------------------------------------------


async def test_migrations_apply_once_whichever_store_object_asks(database_url):
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    first, second = open_store(database_url), open_store(database_url)
    await first.open()
    await second.open()
    try:
        assert await first.migrate() == [version for version, _ in migrations(backend)]
        assert await second.migrate() == []
        assert await first.migrate() == []
        assert await second.ping() is None
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite:///{tmp}/no/such/folder/streamsvc.db", id="sqlite"),
        pytest.param("postgresql://postgres@127.0.0.1:1/streamsvc", id="postgres"),  # no server
    ],
)
async def test_a_database_out_of_reach_is_store_unavailable(url, tmp_path):
    store = open_store(url.format(tmp=tmp_path))
    with pytest.raises(StoreUnavailable):
        await store.open()
    await store.close()


@pytest.mark.parametrize(
    ("url", "many"),
    [
        pytest.param("sqlite:///streamsvc.db", False, id="sqlite"),
        pytest.param("postgresql://postgres@127.0.0.1/streamsvc", True, id="postgres"),
    ],
)
def test_writers_suit_the_backend(url, many):
    """SQLite takes one writer at a time; PostgreSQL keeps several groups in flight."""
    writers = open_store(url).writers  # a property of the backend: nothing is opened
    assert writers >= 1
    assert (writers > 1) is many


async def test_settings_are_replaced_and_outlive_the_store_object(database_url):
    store = open_store(database_url)
    await store.open()
    await store.migrate()
    try:
        assert await store.get_setting("admin_token_hash") is None
        await store.set_setting("admin_token_hash", "first")
        await store.set_setting("admin_token_hash", "second")
        await store.set_setting("demo", "Bắc Kạn")
        assert await store.get_setting("admin_token_hash") == "second"
    finally:
        await store.close()
    again = open_store(database_url)
    await again.open()
    try:
        assert await again.get_setting("admin_token_hash") == "second"
        assert await again.get_setting("demo") == "Bắc Kạn"
    finally:
        await again.close()


# -- roster -----------------------------------------------------------------------------


async def test_units_are_listed_by_code_and_upserted(store):
    assert await store.list_units() == []
    assert await store.upsert_units(UNITS) == (6, 0)
    assert await store.list_units() == sorted(UNITS, key=lambda u: u.code)
    changed = [Unit("A2", "Chi bộ Nam Mẫu mới", "B"), Unit("C", "Đảng bộ Khối", "P")]
    assert await store.upsert_units(changed) == (1, 1)
    units = {u.code: u for u in await store.list_units()}
    assert (units["A2"], units["C"], len(units)) == (changed[0], changed[1], 7)


async def test_member_lookups_answer_for_every_code_asked_however_many(store):
    await roster(store)
    many = [Member(f"N{i:05d}", f"Đảng viên {i}", "A2") for i in range(1200)]
    assert await store.upsert_members(many) == (1200, 0)
    asked = [m.code for m in many] + [f"X{i:05d}" for i in range(600)] + ["a-07", "Đ-05"]
    expected = {m.code for m in many} | {"a-07", "Đ-05"}
    assert await store.member_codes_existing(asked) == expected
    found = await store.get_members(asked)
    assert set(found) == expected
    assert (found["Đ-05"], found["N01199"]) == (BY_CODE["Đ-05"], many[-1])
    assert await store.member_codes_existing([]) == set()
    assert await store.get_members([]) == {}


#: (unit, query, limit, offset) -> (codes, total)
SEARCHES = [
    # everyone, in code point order
    (None, None, 10, 0, ["B-02", "B-10", "Z-01", "a-07", "b-01", "Đ-05"], 6),
    # a unit means its whole subtree, however deep
    ("P", None, 10, 0, ["B-02", "B-10", "a-07", "b-01", "Đ-05"], 5),
    ("A1", None, 10, 0, ["B-02", "a-07"], 2),
    ("Q404", None, 10, 0, [], 0),
    # code or name, without case or accents, spaces squeezed
    (None, "  NGUYEN   van ", 10, 0, ["a-07"], 1),
    (None, "đồng", 10, 0, ["B-10"], 1),
    (None, "b-1", 10, 0, ["B-10"], 1),
    ("P", "thi", 10, 0, ["B-02", "b-01"], 2),
    # a page counts the whole match; a page past the end is empty
    (None, "thi", 1, 1, ["Z-01"], 3),
    (None, "van", 10, 5, [], 3),
    # LIKE's wildcards match only themselves
    (None, "%", 10, 0, [], 0),
    (None, "_", 10, 0, [], 0),
]


async def test_search_members(store):
    # One roster for the whole read-only table: a database per row would cost more than
    # the rest of this file.
    await roster(store)
    for unit, query, limit, offset, codes, total in SEARCHES:
        members, count = await store.search_members(unit, query, limit, offset)
        assert (members, count) == ([BY_CODE[c] for c in codes], total), (unit, query)


# -- sessions ---------------------------------------------------------------------------


async def test_sessions_are_stored_as_planned_and_listed_in_creation_order(store):
    await roster(store)
    hanoi = timezone(timedelta(hours=7))
    new = NewSessionData(
        "Nghị quyết Trung ương 6 khóa XII",
        datetime(2026, 5, 22, 8, 0, 0, 250_000, tzinfo=hanoi),
        datetime(2026, 5, 22, 10, 30, tzinfo=hanoi),
        ("A2", "B"),
        20,
        None,
    )
    session = await store.create_session(new, from_excused_of=None)
    assert session == Session(
        session.id,
        new.title,
        new.starts_at,
        new.ends_at,
        ("A2", "B"),
        late_after_minutes=20,
        makeup_for=None,
        state="open",
        closed_at=None,
        expected=2,
    )
    assert session.starts_at.utcoffset() == timedelta(0)
    assert await store.get_session(session.id) == session
    audiences = [("P",), ("A1",), ("A1", "A"), ("Z", "B")]
    created = [await store.create_session(planned(a), from_excused_of=None) for a in audiences]
    listed = await store.list_sessions()
    assert listed[0] == session
    assert [s.id for s in listed] == sorted(s.id for s in [session, *created])
    # overlapping audience units: each member is expected once
    assert [(s.audience, s.expected) for s in listed[1:]] == [
        (("P",), 5),
        (("A1",), 2),
        (("A1", "A"), 4),
        (("Z", "B"), 2),
    ]
    assert await expected_codes(store, listed[3].id) == ["B-02", "B-10", "a-07", "b-01"]


async def test_unknown_sessions_are_none_or_empty(store):
    await roster(store)
    await open_session(store)
    assert await store.get_session(404) is None
    assert await store.close_session(404, NOW) is None
    assert await store.list_sites(404) == []
    assert await store.list_excuses(404) == {}
    assert await store.list_unexpected_members(404) == {}
    assert await store.list_made_up(404) == set()
    assert await store.is_expected(404, "a-07") is False
    assert await expected_codes(store, 404) == []
    assert await events_of(store, 404) == []


async def test_who_is_expected_follows_the_roster_until_the_close_then_is_frozen(store):
    await roster(store)
    session = await store.create_session(planned(("A",)), from_excused_of=None)
    assert session.expected == 4
    await store.upsert_members([Member("C-01", "Hà Văn Cường", "A2"), Member("b-01", "x", "Z")])
    assert (await store.get_session(session.id)).expected == 4
    assert await expected_codes(store, session.id) == ["B-02", "B-10", "C-01", "a-07"]
    assert await store.is_expected(session.id, "C-01") is True
    assert await store.is_expected(session.id, "b-01") is False
    assert await store.is_expected(session.id, "nobody") is False

    closed_at = NOW + timedelta(hours=2)
    closed = await store.close_session(session.id, closed_at)
    assert closed == Session(
        session.id,
        session.title,
        START,
        END,
        ("A",),
        state="closed",
        closed_at=closed_at,
        expected=4,
    )
    # the roster changes after the close; the session's audience does not
    await store.upsert_members([Member("B-02", "Hoàng Thị Đào", "Z"), Member("C-02", "y", "A1")])
    await store.upsert_units([Unit("Z", "Tỉnh ủy Thái Nguyên", "A")])
    assert await expected_codes(store, session.id) == ["B-02", "B-10", "C-01", "a-07"]
    assert await store.is_expected(session.id, "B-02") is True
    assert await store.is_expected(session.id, "C-02") is False
    assert await store.is_expected(session.id, "Z-01") is False
    # closing again changes nothing: the first closing time stands
    assert await store.close_session(session.id, closed_at + timedelta(hours=1)) == closed
    assert await store.get_session(session.id) == closed
    assert [s for s in await store.list_sessions() if s.id == session.id] == [closed]


async def test_a_makeup_session_expects_the_members_excused_at_the_one_it_makes_up(store):
    await roster(store)
    first, _ = await open_session(store)
    assert await store.add_excuse(first.id, "b-01", "Ốm")
    assert await store.add_excuse(first.id, "B-02", "Công tác")
    makeup = await store.create_session(planned((), makeup_for=first.id), from_excused_of=first.id)
    assert (makeup.audience, makeup.makeup_for, makeup.expected) == ((), first.id, 2)
    assert (await store.get_session(makeup.id)).expected == 2
    assert await expected_codes(store, makeup.id) == ["B-02", "b-01"]
    assert await store.is_expected(makeup.id, "b-01") is True
    assert await store.is_expected(makeup.id, "a-07") is False
    closed = await store.close_session(makeup.id, NOW + timedelta(hours=3))
    assert closed is not None and closed.expected == 2
    assert await expected_codes(store, makeup.id) == ["B-02", "b-01"]


async def test_made_up_counts_checkins_at_any_makeup_session_of_this_one(store):
    await roster(store)
    first, hall = await open_session(store)
    await store.add_excuse(first.id, "b-01", "Ốm")
    makeup = await store.create_session(planned((), makeup_for=first.id), from_excused_of=first.id)
    second = await store.create_session(planned(("A1",), makeup_for=first.id), from_excused_of=None)
    other, other_hall = await open_session(store)
    site = await store.create_site(NewSite(makeup.id, "Phòng họp", "hall", "A", 30, "makeup"))
    site2 = await store.create_site(
        NewSite(second.id, "Tự nghiên cứu", "self_study", None, None, "self")
    )
    assert await store.list_made_up(first.id) == set()
    await commit(store, makeup, site, checkin("m1", "b-01"), checkin("m2", "Z-01"))
    await commit(store, makeup, site, checkin("m3", "B-10"), void("m4", "m3"))
    await commit(store, makeup, site, Incoming("m5", "checkout", NOW, member="Đ-05"))
    await commit(store, second, site2, checkin("s1", "a-07"))
    await commit(store, first, hall, checkin("f1", "B-02"))
    await commit(store, other, other_hall, checkin("o1", "b-01"))
    assert await store.list_made_up(first.id) == {"b-01", "Z-01", "a-07"}
    assert await store.list_made_up(makeup.id) == set()


# -- sites and excuses ------------------------------------------------------------------


async def test_sites_belong_to_their_session_and_are_found_by_token_hash(store):
    await roster(store)
    first = await store.create_session(planned(), from_excused_of=None)
    second = await store.create_session(planned(), from_excused_of=None)
    hall = await store.create_site(
        NewSite(first.id, "Hội trường tỉnh", "hall", None, 300, "hash-1")
    )
    elsewhere = await store.create_site(
        NewSite(second.id, "Điểm cầu", "bridge", "A", None, "hash-2")
    )
    bridge = await store.create_site(
        NewSite(first.id, "Điểm cầu Ba Bể", "bridge", "A1", None, "hash-3")
    )
    assert hall == Site(hall.id, first.id, "Hội trường tỉnh", "hall", None, 300)
    assert bridge == Site(bridge.id, first.id, "Điểm cầu Ba Bể", "bridge", "A1", None)
    assert hall.id < bridge.id
    assert await store.list_sites(first.id) == [hall, bridge]
    assert await store.list_sites(second.id) == [elsewhere]
    assert await store.site_by_token_hash("hash-3") == bridge
    assert await store.site_by_token_hash("hash-2") == elsewhere
    assert await store.site_by_token_hash("hash-4") is None


async def test_many_sites_are_stored_at_once_in_order_after_the_ones_before(store):
    await roster(store)
    session = await store.create_session(planned(), from_excused_of=None)
    other = await store.create_session(planned(), from_excused_of=None)
    hall = await store.create_site(NewSite(session.id, "Hội trường", "hall", None, 300, "h-0"))
    new = [
        NewSite(
            session.id, f"Điểm cầu {i}", "bridge", ("A1", None, "B")[i % 3], i or None, f"h-{i + 1}"
        )
        for i in range(2_000)
    ]
    sites = await store.create_sites(new)
    assert [(s.session_id, s.name, s.kind, s.unit, s.capacity) for s in sites] == [
        (n.session_id, n.name, n.kind, n.unit, n.capacity) for n in new
    ]
    assert len({s.id for s in sites}) == 2_000 and min(s.id for s in sites) > hall.id
    assert await store.list_sites(session.id) == [hall, *sites]
    assert await store.site_by_token_hash("h-1500") == sites[1499]
    assert await store.create_sites([]) == []
    later = await store.create_site(NewSite(other.id, "Sau", "hall", None, None, "h-last"))
    assert later.id > max(s.id for s in sites)


async def test_many_sites_with_one_token_hash_taken_store_none(store):
    await roster(store)
    session = await store.create_session(planned(), from_excused_of=None)
    await store.create_site(NewSite(session.id, "Hội trường", "hall", None, 300, "taken"))
    new = [NewSite(session.id, f"S{i}", "hall", None, None, f"t-{i}") for i in range(10)]
    with pytest.raises(Exception):  # noqa: B017 - each store raises its driver's own error
        await store.create_sites([*new, NewSite(session.id, "S", "hall", None, None, "taken")])
    assert [s.name for s in await store.list_sites(session.id)] == ["Hội trường"]
    assert await store.site_by_token_hash("t-0") is None


async def test_an_excuse_is_refused_to_a_member_who_checked_in(store):
    await roster(store)
    session, hall = await open_session(store)
    other, other_hall = await open_session(store)
    assert await store.list_excuses(session.id) == {}
    assert await store.add_excuse(session.id, "b-01", "Ốm") is True
    assert await store.add_excuse(session.id, "b-01", "Đi công tác") is True
    await commit(store, session, hall, checkin("e1", "a-07"), checkin("e2", "B-02"))
    await commit(store, session, hall, void("v2", "e2"))
    await commit(store, other, other_hall, checkin("o1", "B-10"))
    assert await store.add_excuse(session.id, "a-07", "Ốm") is False
    assert await store.add_excuse(session.id, "B-02", "Quét nhầm thẻ") is True
    assert await store.add_excuse(session.id, "B-10", "Học ở nơi khác") is True
    assert await store.list_excuses(session.id) == {
        "b-01": "Đi công tác",
        "B-02": "Quét nhầm thẻ",
        "B-10": "Học ở nơi khác",
    }
    assert await store.list_excuses(other.id) == {}


# -- events -----------------------------------------------------------------------------


async def test_commit_answers_each_event_and_stores_the_accepted_ones(store):
    await roster(store)
    session, hall = await open_session(store)
    items = [
        checkin("e1", "a-07"),
        checkin("e2", "nobody"),
        checkin("e3", "B-02", minutes=-61),
        Incoming("e4", "guests", NOW, count=25),
        Incoming("e5", "checkout", NOW, member="Đ-05"),
        void("e6", "e404"),
        void("e7", "e1"),
        checkin("e8", "a-07", minutes=6),
    ]
    outcomes, stored = await store.commit_events(
        [(session.id, hall, e) for e in items], decide_batch, NOW
    )
    assert [(o.id, o.result, o.reason) for o in outcomes] == [
        ("e1", "accepted", None),
        ("e2", "rejected", "unknown_member"),
        ("e3", "rejected", "ts_out_of_window"),
        ("e4", "accepted", None),
        ("e5", "accepted", None),
        ("e6", "rejected", "unknown_target"),
        ("e7", "accepted", None),
        ("e8", "accepted", None),
    ]
    assert (outcomes[0].member, outcomes[0].unit_name) == (BY_CODE["a-07"], "Chi bộ Đồng Phúc")
    assert (outcomes[4].member, outcomes[4].unit_name) == (BY_CODE["Đ-05"], "Đảng bộ huyện Na Rì")
    assert outcomes[7].already_present is None  # e1 was voided in the same group
    at = START + timedelta(minutes=5)
    assert stored == [
        Event("e1", session.id, hall.id, "checkin", at, NOW, member="a-07"),
        Event("e4", session.id, hall.id, "guests", NOW, NOW, count=25),
        Event("e5", session.id, hall.id, "checkout", NOW, NOW, member="Đ-05"),
        Event("e7", session.id, hall.id, "void", None, NOW, target="e1"),
        Event("e8", session.id, hall.id, "checkin", at + timedelta(minutes=1), NOW, member="a-07"),
    ]
    assert await events_of(store, session.id) == [
        replace(stored[0], voided=True),
        *stored[1:],
    ]


async def test_already_present_comes_from_earlier_commits_and_ignores_voided_checkins(store):
    await roster(store)
    session, hall = await open_session(store)
    other, other_hall = await open_session(store)
    bridge = await store.create_site(
        NewSite(session.id, "Điểm cầu Ba Bể", "bridge", "A", None, "b")
    )
    await commit(store, session, hall, checkin("e1", "a-07", minutes=1))
    [second] = await commit(store, session, bridge, checkin("e2", "a-07", minutes=2))
    assert second.already_present == Presence(hall.id, "Hội trường", START + timedelta(minutes=1))
    [elsewhere] = await commit(store, other, other_hall, checkin("o1", "a-07", minutes=3))
    assert (elsewhere.result, elsewhere.already_present) == ("accepted", None)
    await commit(store, session, hall, void("v1", "e1"))
    [third] = await commit(store, session, hall, checkin("e3", "a-07", minutes=4))
    assert third.already_present == Presence(
        bridge.id, "Điểm cầu Ba Bể", START + timedelta(minutes=2)
    )


async def test_a_void_takes_back_a_stored_checkin_of_its_own_site_only(store):
    await roster(store)
    session, hall = await open_session(store)
    bridge = await store.create_site(NewSite(session.id, "Điểm cầu", "bridge", None, None, "b"))
    await commit(
        store, session, hall, checkin("e1", "a-07"), Incoming("g1", "guests", NOW, count=3)
    )
    answers = [
        await commit(store, session, bridge, void("v1", "e1")),
        await commit(store, session, hall, void("v2", "g1")),
        await commit(store, session, hall, void("v3", "e1")),
        await commit(store, session, hall, void("v4", "e1")),
    ]
    assert [(o.result, o.reason) for [o] in answers] == [
        ("rejected", "unknown_target"),
        ("rejected", "unknown_target"),
        ("accepted", None),
        ("accepted", None),
    ]
    events = {e.id: e for e in await events_of(store, session.id)}
    assert sorted(events) == ["e1", "g1", "v3", "v4"]
    assert (events["e1"].voided, events["g1"].voided, events["v3"].target) == (True, False, "e1")


async def test_events_sent_after_the_close_are_late_uploads_if_seen_before_it(store):
    await roster(store)
    session, hall = await open_session(store)
    await commit(store, session, hall, checkin("e1", "a-07"))
    closed_at = START + timedelta(minutes=90)
    await store.close_session(session.id, closed_at)
    later = closed_at + timedelta(hours=5)
    outcomes = await commit(
        store,
        session,
        hall,
        checkin("e2", "B-02", minutes=89),
        checkin("e3", "b-01", minutes=91),
        void("e4", "e1"),
        now=later,
    )
    assert [(o.result, o.reason) for o in outcomes] == [
        ("accepted", None),
        ("rejected", "session_closed"),
        ("accepted", None),
    ]
    events = await events_of(store, session.id)
    assert [(e.id, e.late_upload, e.voided) for e in events] == [
        ("e1", False, True),
        ("e2", True, False),
        ("e4", True, False),
    ]


async def test_one_group_may_hold_events_of_several_sessions(store):
    await roster(store)
    first, hall = await open_session(store)
    second, other_hall = await open_session(store, ("Z",))
    items = [
        (first.id, hall, checkin("e1", "a-07")),
        (second.id, other_hall, checkin("e2", "a-07")),
        (second.id, other_hall, checkin("e3", "Z-01")),
        (404, hall, checkin("e4", "a-07")),
    ]
    outcomes, stored = await store.commit_events(items, decide_batch, NOW)
    assert [(o.result, o.reason, o.already_present) for o in outcomes] == [
        ("accepted", None, None),
        ("accepted", None, None),
        ("accepted", None, None),
        ("rejected", "session_closed", None),
    ]
    assert [e.id for e in await events_of(store, first.id)] == ["e1"]
    assert [e.id for e in await events_of(store, second.id)] == ["e2", "e3"]
    assert [e.session_id for e in stored] == [first.id, second.id, second.id]


async def test_a_group_of_many_members_is_decided_on_all_their_facts(store):
    await roster(store)
    many = [Member(f"N{i:05d}", f"Đảng viên {i}", "A2") for i in range(1000)]
    await store.upsert_members(many)
    session, hall = await open_session(store)
    first = [checkin(f"a{i:05d}", m.code) for i, m in enumerate(many)]
    again = [checkin(f"b{i:05d}", m.code, minutes=9) for i, m in enumerate(many)]
    assert {o.result for o in await commit(store, session, hall, *first)} == {"accepted"}
    outcomes = await commit(store, session, hall, *again)
    assert {(o.result, o.already_present.site_id) for o in outcomes} == {("accepted", hall.id)}
    assert {o.result for o in await commit(store, session, hall, *first)} == {"duplicate"}
    assert len(await events_of(store, session.id)) == 2000


async def test_events_stream_by_arrival_or_by_member_in_code_point_order(store):
    await roster(store)
    session, hall = await open_session(store)
    bridge = await store.create_site(NewSite(session.id, "Điểm cầu", "bridge", None, None, "b"))
    t = NOW  # each group is received at its own `now`
    await commit(
        store,
        session,
        hall,
        checkin("g1-z", "b-01", 1),
        checkin("g1-a", "B-02", 5),
        now=t + 2 * SEC,
    )
    await commit(
        store,
        session,
        hall,
        checkin("g2-b", "a-07", 3),
        Incoming("g2-a", "guests", START, count=7),
        now=t + SEC,
    )
    await commit(
        store,
        session,
        bridge,
        Incoming("g3-y", "checkout", START + timedelta(minutes=4), member="B-02"),
        checkin("g3-x", "B-02", 4),
        checkin("g3-w", "B-02", 0),
        checkin("g3-v", "Đ-05", 2),
        now=t + 3 * SEC,
    )
    arrival = await events_of(store, session.id)
    assert [e.id for e in arrival] == [
        *("g2-a", "g2-b"),
        *("g1-a", "g1-z"),
        *("g3-v", "g3-w", "g3-x", "g3-y"),
    ]
    by_member = await events_of(store, session.id, by_member=True)
    assert sorted(by_member, key=lambda e: e.id) == sorted(arrival, key=lambda e: e.id)
    # events with no member (guests, voids) carry nothing for attendance; where they fall
    # in this order is left to the store
    assert [e.id for e in by_member if e.member is not None] == [
        *("g3-w", "g3-x", "g3-y", "g1-a"),  # B-02 by ts, then by id at the same ts
        "g2-b",  # a-07
        "g1-z",  # b-01
        "g3-v",  # Đ-05
    ]


async def test_event_streams_run_past_one_fetch_and_may_be_left_early(store):
    await roster(store)
    session, hall = await open_session(store)
    items = [Incoming(f"g{i:05d}", "guests", NOW, count=i) for i in range(5_001)]
    await commit(store, session, hall, *items)
    stream = store.iter_events(session.id)
    first = [await anext(stream) for _ in range(3)]
    await stream.aclose()
    assert [e.count for e in first] == [0, 1, 2]
    # the connection a stream held is free again: the store goes on reading and writing
    [answer] = await commit(store, session, hall, checkin("e1", "a-07"))
    assert answer.result == "accepted"
    counts = [e.count async for e in store.iter_events(session.id) if e.type == "guests"]
    assert counts == list(range(5_001))


# -- attendance -------------------------------------------------------------------------


async def test_unexpected_members_before_and_after_the_close(store):
    await roster(store)
    session, hall = await open_session(store, ("A1",))
    await commit(
        store,
        session,
        hall,
        checkin("e1", "a-07"),
        checkin("e2", "Z-01"),
        checkin("e3", "Đ-05"),
        void("v3", "e3"),
        Incoming("e4", "checkout", NOW, member="B-10"),
    )
    assert await store.list_unexpected_members(session.id) == {"Z-01": BY_CODE["Z-01"]}
    # while open, the audience is the roster as it is now
    await store.upsert_members([Member("Z-01", "Ma Thị Hương", "A1")])
    assert await store.list_unexpected_members(session.id) == {}
    await store.close_session(session.id, NOW + timedelta(hours=1))
    # once closed, it is the audience as it was at the close
    await store.upsert_members([Member("C-01", "Hà Văn Cường", "A1"), Member("a-07", "An", "Z")])
    await commit(
        store,
        session,
        hall,
        checkin("e5", "C-01", 30),
        checkin("e6", "b-01", 31),
        now=NOW + timedelta(hours=2),
    )
    assert await store.list_unexpected_members(session.id) == {
        "C-01": Member("C-01", "Hà Văn Cường", "A1"),
        "b-01": BY_CODE["b-01"],
    }
