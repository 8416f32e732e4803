"""LiveState: incremental live counts, checked by hand and against a naive recount."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live_world import at, event_lists, live_state, members_under, unit_tree, within

from streamsvc.domain.live import LiveState
from streamsvc.domain.models import Event, Site, Unit

#: every test twice: expected members in a dict and in the compact form (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("expected_form")


SID = 7

# P (province) -> A, B (committees) -> A1, A2, B1 (cells); Z is another province, outside.
UNITS = unit_tree(
    Unit("P", "Tỉnh ủy"),
    Unit("A", "Đảng bộ A", "P"),
    Unit("B", "Đảng bộ B", "P"),
    Unit("A2", "Chi bộ A2", "A"),
    Unit("A1", "Chi bộ A1", "A"),
    Unit("B1", "Chi bộ B1", "B"),
    Unit("Z", "Other province"),
)
# every member of the roster and their unit; who is expected depends on the audience
ROSTER = {
    "M1": "A1",
    "M2": "A1",
    "M3": "A2",
    "M4": "A",
    "M5": "B1",
    "M6": "B1",
    "M7": "P",
    "X1": "Z",
}
SITES = (
    Site(1, SID, "Hội trường tỉnh", "hall"),
    Site(2, SID, "Điểm cầu A", "bridge", unit="A"),
    Site(3, SID, "Điểm xem B", "broadcast", unit="B"),
)


def make_state(audience: tuple[str, ...] = ("P",)) -> LiveState:
    return live_state(SID, UNITS, members_under(UNITS, ROSTER, audience), SITES, audience)


def checkin(
    eid: str, member: str, site: int = 1, ts: float = 0, received: float | None = None, **kw: Any
) -> Event:
    received_at = at(ts if received is None else received)
    return Event(eid, SID, site, "checkin", at(ts), received_at, member=member, **kw)


def void(eid: str, target: str, site: int = 1, received: float = 0) -> Event:
    return Event(eid, SID, site, "void", None, at(received), target=target)


def guests(eid: str, site: int, count: int, ts: float, received: float = 0) -> Event:
    return Event(eid, SID, site, "guests", at(ts), at(received), count=count)


def checkout(eid: str, member: str, site: int = 1, ts: float = 0) -> Event:
    return Event(eid, SID, site, "checkout", at(ts), at(ts), member=member)


def apply_all(state: LiveState, *events: Event) -> LiveState:
    for event in events:
        state.apply(event)
    return state


def site_of(snapshot: dict[str, Any], site_id: int) -> dict[str, Any]:
    return next(site for site in snapshot["sites"] if site["id"] == site_id)


def unit_counts(snapshot: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {unit["code"]: (unit["expected"], unit["present"]) for unit in snapshot["units"]}


# -- counting ---------------------------------------------------------------------------------


def test_two_checkins_of_one_member_count_once():
    state = apply_all(make_state(), checkin("e1", "M1"), checkin("e2", "M1", ts=5))
    live = state.snapshot()
    assert (live["present"], live["unexpected"]) == (1, 0)
    assert site_of(live, 1)["present"] == 1


def test_one_member_at_two_sites_counts_once_in_the_session_and_once_at_each_site():
    state = apply_all(make_state(), checkin("e1", "M1", site=1), checkin("e2", "M1", site=2))
    live = state.snapshot()
    assert live["present"] == 1
    assert [site["present"] for site in live["sites"]] == [1, 1, 0]
    assert unit_counts(live)["A1"] == (2, 1)


def test_void_takes_the_member_back_out():
    state = apply_all(make_state(), checkin("e1", "M1"), void("v1", "e1"))
    live = state.snapshot()
    assert live["present"] == 0
    assert site_of(live, 1)["present"] == 0
    assert all(present == 0 for _, present in unit_counts(live).values())
    assert live["curve"] == []


def test_void_of_one_of_two_checkins_keeps_the_member_present():
    state = apply_all(
        make_state(), checkin("e1", "M1", site=1), checkin("e2", "M1", site=2), void("v1", "e1")
    )
    live = state.snapshot()
    assert live["present"] == 1
    assert [site["present"] for site in live["sites"]] == [0, 1, 0]
    assert unit_counts(live)["P"] == (7, 1)


def test_void_arriving_before_its_target_cancels_it():
    state = apply_all(make_state(), void("v1", "e1"), checkin("e1", "M1"), checkin("e2", "M2"))
    live = state.snapshot()
    assert live["present"] == 1
    assert unit_counts(live)["A1"] == (2, 1)
    assert live["curve"] == [{"minute": "2026-05-22T00:30:00Z", "checkins": 1}]


def test_a_checkin_stored_as_voided_does_not_count_and_its_void_changes_nothing():
    state = apply_all(make_state(), checkin("e1", "M1", voided=True))
    state.take_delta()
    state.apply(void("v1", "e1", received=0))
    live = state.snapshot()
    assert (live["present"], live["curve"]) == (0, [])
    assert state.take_delta() is None


def test_void_of_something_that_is_not_a_checkin_changes_no_count():
    state = apply_all(make_state(), guests("g1", 1, 40, ts=0), void("v1", "g1"), void("v2", "v1"))
    live = state.snapshot()
    assert (live["present"], live["guests"]) == (0, 40)


def test_unexpected_member_counts_apart():
    state = apply_all(make_state(("A",)), checkin("e1", "M5"), checkin("e2", "M1", site=2))
    live = state.snapshot()
    assert (live["expected"], live["present"], live["unexpected"]) == (4, 1, 1)
    # a site counts everyone checked in there, expected or not
    assert [site["present"] for site in live["sites"]] == [1, 1, 0]
    state.apply(void("v1", "e1"))
    assert state.snapshot()["unexpected"] == 0


def test_guests_latest_ts_wins_even_when_an_older_one_arrives_later():
    state = apply_all(
        make_state(),
        guests("g1", 3, 120, ts=60, received=60),
        guests("g2", 3, 150, ts=120, received=125),
        guests("g3", 3, 90, ts=90, received=130),  # queued offline, older than g2
        guests("g4", 2, 15, ts=10, received=131),
    )
    live = state.snapshot()
    assert [site["guests"] for site in live["sites"]] == [0, 15, 150]
    assert live["guests"] == 165
    assert site_of(live, 3)["last_event_at"] == "2026-05-22T00:32:10Z"


def test_guests_at_the_same_ts_settle_the_same_way_in_any_order():
    first = apply_all(make_state(), guests("g1", 1, 10, ts=5), guests("g2", 1, 20, ts=5))
    second = apply_all(make_state(), guests("g2", 1, 20, ts=5), guests("g1", 1, 10, ts=5))
    assert first.snapshot() == second.snapshot()


def test_unit_counts_roll_up_a_three_level_tree():
    state = apply_all(
        make_state(),
        checkin("e1", "M1"),
        checkin("e2", "M3"),
        checkin("e3", "M4"),
        checkin("e4", "M5"),
        checkin("e5", "M7"),
        checkin("e6", "X1"),
    )
    live = state.snapshot()
    assert live["units"] == [
        {"code": "P", "name": "Tỉnh ủy", "parent": None, "expected": 7, "present": 5},
        {"code": "A", "name": "Đảng bộ A", "parent": "P", "expected": 4, "present": 3},
        {"code": "A1", "name": "Chi bộ A1", "parent": "A", "expected": 2, "present": 1},
        {"code": "A2", "name": "Chi bộ A2", "parent": "A", "expected": 1, "present": 1},
        {"code": "B", "name": "Đảng bộ B", "parent": "P", "expected": 2, "present": 1},
        {"code": "B1", "name": "Chi bộ B1", "parent": "B", "expected": 2, "present": 1},
    ]
    assert (live["present"], live["unexpected"]) == (5, 1)


def test_audience_roots_inside_one_another_are_listed_once():
    state = make_state(("B1", "B", "A2"))
    assert [unit["code"] for unit in state.snapshot()["units"]] == ["B", "B1", "A2"]
    state.apply(checkin("e1", "M5"))
    assert unit_counts(state.snapshot()) == {"B": (2, 1), "B1": (2, 1), "A2": (1, 0)}


def test_applying_the_same_events_again_changes_nothing():
    events = [
        checkin("e1", "M1"),
        checkin("e2", "M2", site=2),
        void("v1", "e2"),
        guests("g1", 3, 50, ts=10),
        checkout("o1", "M1", ts=20),
    ]
    state = apply_all(make_state(), *events)
    before = state.snapshot()
    state.take_delta()
    apply_all(state, *events)
    assert state.snapshot() == before
    assert state.take_delta() is None


def test_an_invalid_event_raises_and_is_not_remembered():
    state = make_state()
    with pytest.raises(ValueError):
        state.apply(Event("e1", SID + 1, 1, "checkin", at(0), at(0), member="M1"))
    with pytest.raises(ValueError):
        state.apply(Event("e1", SID, 1, "teleport", at(0), at(0), member="M1"))
    state.apply(checkin("e1", "M1"))
    assert state.snapshot()["present"] == 1


# -- sites --------------------------------------------------------------------------------


def test_last_event_at_is_the_latest_arrival_of_any_event_at_the_site():
    state = apply_all(
        make_state(),
        checkin("e1", "M1", ts=0, received=30),
        checkout("o1", "M1", ts=50),
        checkin("e2", "M2", ts=10, received=40),  # arrived before the checkout, sent late
    )
    assert site_of(state.snapshot(), 1)["last_event_at"] == "2026-05-22T00:30:50Z"
    assert site_of(state.snapshot(), 2)["last_event_at"] is None


def test_times_come_out_in_utc():
    hanoi = timezone(timedelta(hours=7))
    ts = datetime(2026, 5, 22, 7, 31, 59, 999_000, tzinfo=hanoi)
    state = apply_all(make_state(), Event("e1", SID, 1, "checkin", ts, ts, member="M1"))
    live = state.snapshot()
    assert site_of(live, 1)["last_event_at"] == "2026-05-22T00:31:59Z"
    assert live["curve"] == [{"minute": "2026-05-22T00:31:00Z", "checkins": 1}]


def test_connected_while_any_device_is():
    state = make_state()
    state.set_connected(2, True)
    state.set_connected(2, True)
    state.set_connected(2, False)
    assert [site["connected"] for site in state.snapshot()["sites"]] == [False, True, False]
    state.set_connected(2, False)
    state.set_connected(2, False)  # a stray disconnect does not go below zero
    assert not site_of(state.snapshot(), 2)["connected"]
    state.set_connected(2, True)
    assert site_of(state.snapshot(), 2)["connected"]
    state.set_connections(2, 0)
    state.set_connections(3, 4)
    assert [site["connected"] for site in state.snapshot()["sites"]] == [False, False, True]
    with pytest.raises(ValueError):
        state.set_connections(3, -1)


def test_a_site_shows_once_it_is_added_with_what_it_already_counted():
    state = apply_all(make_state(), checkin("e1", "M1", site=9))
    live = state.snapshot()
    assert [site["id"] for site in live["sites"]] == [1, 2, 3]
    assert live["present"] == 1
    state.take_delta()
    state.add_site(Site(9, SID, "Điểm cầu mới", "bridge"))
    assert site_of(state.snapshot(), 9)["present"] == 1
    delta = state.take_delta()
    assert delta is not None
    assert [site["id"] for site in delta["sites"]] == [9]


# -- snapshot, curve and deltas -----------------------------------------------------------


def test_snapshot_has_the_contract_shape():
    live = make_state().snapshot()
    assert list(live) == [
        "session", "expected", "present", "guests", "sites", "unexpected", "units", "curve"
    ]  # fmt: skip
    assert (live["session"], live["expected"]) == (SID, 7)
    assert live["sites"][0] == {
        "id": 1,
        "name": "Hội trường tỉnh",
        "kind": "hall",
        "unit": SITES[0].unit,
        "capacity": SITES[0].capacity,
        "present": 0,
        "guests": 0,
        "connected": False,
        "last_event_at": None,
    }


def test_curve_counts_checkins_per_minute_of_ts():
    state = apply_all(
        make_state(),
        checkin("e1", "M1", ts=0),
        checkin("e2", "M1", ts=59),  # a second check-in of one member is still a check-in
        checkin("e3", "M2", ts=-1),
        checkin("e4", "M3", ts=61, voided=True),
        checkin("e5", "M4", ts=3600),
    )
    assert state.snapshot()["curve"] == [
        {"minute": "2026-05-22T00:29:00Z", "checkins": 1},
        {"minute": "2026-05-22T00:30:00Z", "checkins": 2},
        {"minute": "2026-05-22T01:30:00Z", "checkins": 1},
    ]


def test_delta_holds_only_what_changed():
    state = make_state()
    assert state.take_delta() is None
    state.apply(checkin("e1", "M5", site=3, ts=0))
    assert state.take_delta() == {
        "present": 1,
        "unexpected": 0,
        "guests": 0,
        "sites": [site_of(state.snapshot(), 3)],
        "units": [
            {"code": "P", "name": "Tỉnh ủy", "parent": None, "expected": 7, "present": 1},
            {"code": "B", "name": "Đảng bộ B", "parent": "P", "expected": 2, "present": 1},
            {"code": "B1", "name": "Chi bộ B1", "parent": "B", "expected": 2, "present": 1},
        ],
        "curve": [{"minute": "2026-05-22T00:30:00Z", "checkins": 1}],
    }
    assert state.take_delta() is None

    state.apply(checkout("o1", "M5", site=2, ts=30))
    delta = state.take_delta()
    assert delta is not None
    assert [site["id"] for site in delta["sites"]] == [2]
    assert (delta["units"], delta["curve"]) == ([], [])

    state.apply(void("v1", "e1", site=2, received=20))  # an older arrival: site 2 unchanged
    delta = state.take_delta()
    assert delta is not None
    assert [site["id"] for site in delta["sites"]] == [3]
    assert delta["curve"] == [{"minute": "2026-05-22T00:30:00Z", "checkins": 0}]
    assert delta["present"] == 0

    state.set_connected(1, True)
    state.set_connected(1, True)  # still connected: no change
    delta = state.take_delta()
    assert delta is not None
    assert [site["id"] for site in delta["sites"]] == [1]
    assert (delta["units"], delta["curve"]) == ([], [])
    state.set_connected(1, True)
    state.apply(guests("g1", 3, 0, ts=5, received=-10))  # a headcount of 0, an old arrival
    assert state.take_delta() is None


# -- against a recount --------------------------------------------------------------------


def recount(audience: tuple[str, ...], events: list[Event]) -> dict[str, Any]:
    """LIVE computed the slow, obvious way from the whole event list."""
    expected = members_under(UNITS, ROSTER, audience)
    voided = {event.target for event in events if event.type == "void"}
    counting = [
        event
        for event in events
        if event.type == "checkin" and not event.voided and event.id not in voided
    ]
    present = {event.member for event in counting}

    sites = []
    for site in SITES:
        here = [event for event in events if event.site_id == site.id]
        heads = sorted((e.ts, e.id, e.count) for e in here if e.type == "guests")
        sites.append(
            {
                "id": site.id,
                "name": site.name,
                "kind": site.kind,
                "unit": site.unit,
                "capacity": site.capacity,
                "present": len({e.member for e in counting if e.site_id == site.id}),
                "guests": heads[-1][2] if heads else 0,
                "connected": False,
                "last_event_at": (
                    max(e.received_at for e in here).strftime("%Y-%m-%dT%H:%M:%SZ")
                    if here
                    else None
                ),
            }
        )

    units = []

    def walk(code: str, parent: str | None) -> None:
        mine = {m for m, unit in expected.items() if within(UNITS, unit, code)}
        name = UNITS[code].name
        units.append(
            {
                "code": code,
                "name": name,
                "parent": parent,
                "expected": len(mine),
                "present": len(mine & present),
            }
        )
        for child in sorted(c for c, unit in UNITS.items() if unit.parent == code):
            walk(child, code)

    for root in dict.fromkeys(audience):
        if not any(within(UNITS, root, other) for other in audience if other != root):
            walk(root, None)

    minutes = Counter(event.ts.replace(second=0, microsecond=0) for event in counting)
    return {
        "session": SID,
        "expected": len(expected),
        "present": len(present & set(expected)),
        "guests": sum(site["guests"] for site in sites),
        "sites": sites,
        "unexpected": len(present - set(expected)),
        "units": units,
        "curve": [
            {"minute": minute.strftime("%Y-%m-%dT%H:%M:%SZ"), "checkins": n}
            for minute, n in sorted(minutes.items())
        ],
    }


def fold(live: dict[str, Any], delta: dict[str, Any]) -> None:
    """What a monitor does with a delta."""
    for key in ("present", "unexpected", "guests"):
        live[key] = delta[key]
    for key, name in (("sites", "id"), ("units", "code")):
        changed = {entry[name]: entry for entry in delta[key]}
        live[key] = [changed.get(entry[name], entry) for entry in live[key]]
    curve = {entry["minute"]: entry["checkins"] for entry in live["curve"]}
    curve.update((entry["minute"], entry["checkins"]) for entry in delta["curve"])
    live["curve"] = [{"minute": m, "checkins": n} for m, n in sorted(curve.items()) if n]


@settings(deadline=None)
@given(
    audience=st.sampled_from([("P",), ("A", "B"), ("B1", "A"), ("A1",)]),
    events=event_lists(SID, 3, ROSTER),
    data=st.data(),
)
def test_incremental_counts_equal_a_recount(
    audience: tuple[str, ...], events: list[Event], data: st.DataObject
) -> None:
    # the bus delivers in any order, and some events twice
    order = data.draw(st.permutations(events))
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    arrivals = order + repeats
    arrivals = data.draw(st.permutations(arrivals))

    state = make_state(audience)
    monitor = state.snapshot()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(arrivals)), max_size=4)))
    for i, event in enumerate(arrivals):
        if i in cuts:
            delta = state.take_delta()
            if delta is not None:
                fold(monitor, delta)
        state.apply(event)
    delta = state.take_delta()
    if delta is not None:
        fold(monitor, delta)

    live = state.snapshot()
    assert live == recount(audience, events)
    assert monitor == live
    assert state.take_delta() is None
