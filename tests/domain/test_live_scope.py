"""LiveState's scoped views: LIVE restricted to a subtree, checked against a brute-force
recount over the same events for scopes above, inside, beside and outside the audience."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live_world import at, event_lists, live_state, members_under, unit_tree, within

from streamsvc.domain.live import LiveState
from streamsvc.domain.models import Event, Site, Unit

#: every test twice: expected members in a dict and in the compact form (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("expected_form")


SID = 9

# R (country) -> P (province) -> A, B -> A1, A2, B1; Z another province under R.
UNITS = unit_tree(
    Unit("R", "Trung ương"),
    Unit("P", "Tỉnh ủy", "R"),
    Unit("A", "Đảng bộ A", "P"),
    Unit("B", "Đảng bộ B", "P"),
    Unit("A2", "Chi bộ A2", "A"),
    Unit("A1", "Chi bộ A1", "A"),
    Unit("B1", "Chi bộ B1", "B"),
    Unit("Z", "Tỉnh khác", "R"),
)
ROSTER = {
    "M1": "A1",
    "M2": "A1",
    "M3": "A2",
    "M4": "A",
    "M5": "B1",
    "M6": "B1",
    "M7": "P",
    "X1": "Z",
    "X2": "R",
}
SITES = (
    Site(1, SID, "Hội trường", "hall"),  # no unit: the whole tree only
    Site(2, SID, "Điểm cầu A", "bridge", unit="A"),
    Site(3, SID, "Điểm xem B", "broadcast", unit="B"),
    Site(4, SID, "Điểm cầu A1", "bridge", unit="A1"),
    Site(5, SID, "Điểm cầu Z", "bridge", unit="Z"),
)
SCOPES = ("R", "P", "A", "A1", "A2", "B", "B1", "Z")
MAKEUP = {"M1": "A1", "M5": "B1", "X1": "Z"}  # a make-up session's excused members


def expected_for(audience: tuple[str, ...]) -> dict[str, str]:
    if not audience:
        return dict(MAKEUP)
    return members_under(UNITS, ROSTER, audience)


def make_state(audience: tuple[str, ...], sites: tuple[Site, ...] = SITES) -> LiveState:
    return live_state(SID, UNITS, expected_for(audience), sites, audience)


def place_all(state: LiveState) -> None:
    state.place_members({m: ROSTER[m] for m in state.take_unplaced()})


def recount(
    audience: tuple[str, ...],
    events: list[Event],
    root: str,
    placed: Mapping[str, str],
    sites: tuple[Site, ...],
) -> dict[str, Any]:
    """LIVE restricted to `root`, the slow and obvious way (the whole session's LIVE, tested
    against its own recount in test_live_state, filtered); `placed` are the unexpected
    members whose unit the state was told, `sites` those it knows."""
    whole = make_state(audience, sites)
    for event in events:
        whole.apply(event)
    full = whole.snapshot()
    expected = expected_for(audience)
    voided = {e.target for e in events if e.type == "void"}
    present = {
        e.member
        for e in events
        if e.type == "checkin" and not e.voided and e.id not in voided and e.member
    }
    mine = {m for m, u in expected.items() if within(UNITS, u, root)}
    sites = [s for s in full["sites"] if within(UNITS, s["unit"], root)]
    units = [dict(u) for u in full["units"] if within(UNITS, u["code"], root)]
    codes = {u["code"] for u in units}
    for unit in units:
        if unit["parent"] not in codes:
            unit["parent"] = None
    return {
        "session": SID,
        "expected": len(mine),
        "present": len(mine & present),
        "guests": sum(s["guests"] for s in sites),
        "sites": sites,
        "unexpected": len(
            {m for m in present - set(expected) if m in placed and within(UNITS, placed[m], root)}
        ),
        "units": units,
        "curve": [],
    }


def fold(live: dict[str, Any], delta: dict[str, Any]) -> None:
    """What a monitor does with a delta."""
    for key in ("present", "unexpected", "guests"):
        live[key] = delta[key]
    for key, name in (("sites", "id"), ("units", "code")):
        changed = {entry[name]: entry for entry in delta[key]}
        live[key] = [changed.pop(entry[name], entry) for entry in live[key]]
        if changed:  # a site registered since: it comes in a delta, a unit never does
            assert key == "sites"
            live[key] = sorted([*live[key], *changed.values()], key=lambda e: e[name])
    assert delta["curve"] == []


def checkin(eid: str, member: str, site: int, ts: float = 0) -> Event:
    return Event(eid, SID, site, "checkin", at(ts), at(ts), member=member)


# -- by hand ----------------------------------------------------------------------------------


def test_a_scope_inside_the_audience_reads_its_own_unit():
    state = make_state(("P",))
    for i, member in enumerate(("M1", "M3", "M5", "M7")):
        state.apply(checkin(f"e{i}", member, 1))
    live = state.view("A").snapshot()
    assert (live["expected"], live["present"]) == (4, 2)
    assert [u["code"] for u in live["units"]] == ["A", "A1", "A2"]
    assert live["units"][0]["parent"] is None
    assert [s["id"] for s in live["sites"]] == [2, 4]


def test_a_scope_above_the_audience_sums_the_roots_it_holds():
    state = make_state(("A", "B1"))
    for i, member in enumerate(("M1", "M5", "M7")):
        state.apply(checkin(f"e{i}", member, 2))
    live = state.view("P").snapshot()
    assert (live["expected"], live["present"]) == (6, 2)
    assert [u["code"] for u in live["units"]] == ["A", "A1", "A2", "B1"]
    place_all(state)
    assert state.view("P").snapshot()["unexpected"] == 1  # M7, of P, not in the audience


def test_a_disjoint_scope_sees_no_member_and_no_site_without_a_unit():
    state = make_state(("P",))
    state.apply(checkin("e1", "M1", 1))
    state.apply(Event("g1", SID, 1, "guests", at(0), at(0), count=40))
    state.apply(Event("g2", SID, 5, "guests", at(0), at(0), count=7))
    live = state.view("Z").snapshot()
    assert (live["expected"], live["present"], live["guests"]) == (0, 0, 7)
    assert [s["id"] for s in live["sites"]] == [5]
    assert state.snapshot()["guests"] == 47


def test_an_unexpected_member_counts_in_the_scope_once_placed_and_leaves_with_a_void():
    state = make_state(("A",))
    view = state.view("B")
    state.apply(checkin("e1", "M5", 3))
    assert state.snapshot()["unexpected"] == 1
    changes = state.take_changes()
    first = view.delta(changes)
    assert first is not None and first["unexpected"] == 0  # the site changed, M5 not placed
    assert state.take_unplaced() == ["M5"]
    assert state.take_unplaced() == []
    state.place_members({"M5": "B1"})
    delta = view.delta(state.take_changes())
    assert delta is not None and delta["unexpected"] == 1
    state.apply(Event("v1", SID, 3, "void", None, at(1), target="e1"))
    delta = view.delta(state.take_changes())
    assert delta is not None and delta["unexpected"] == 0
    state.apply(checkin("e2", "M5", 3))  # known now: no second lookup
    assert state.take_unplaced() == []
    assert state.view("B").snapshot()["unexpected"] == 1


def test_a_scope_gets_no_delta_when_nothing_in_it_changed():
    state = make_state(("P",))
    view_a, view_b = state.view("A"), state.view("B")
    state.apply(checkin("e1", "M1", 2))
    changes = state.take_changes()
    assert view_b.delta(changes) is None
    delta = view_a.delta(changes)
    assert delta is not None
    assert delta["present"] == 1
    assert [s["id"] for s in delta["sites"]] == [2]
    assert [u["code"] for u in delta["units"]] == ["A", "A1"]
    assert state.view(None).delta(changes) == state.delta(changes)


def test_guests_follow_a_site_whose_unit_is_learnt_later():
    state = make_state(("P",))
    state.apply(Event("g1", SID, 6, "guests", at(0), at(0), count=12))  # site 6 not known yet
    assert state.view("B").snapshot()["guests"] == 0
    state.add_site(Site(6, SID, "Điểm xem B1", "broadcast", unit="B1"))
    live = state.view("B").snapshot()
    assert live["guests"] == 12
    assert [s["id"] for s in live["sites"]] == [3, 6]
    assert state.view("A").snapshot()["guests"] == 0


def test_a_makeup_session_counts_excused_members_by_their_unit():
    state = make_state(())
    state.apply(checkin("e1", "M1", 1))
    state.apply(checkin("e2", "X1", 1))
    assert state.snapshot()["units"] == []
    assert (state.view("A")._counts()) == (1, 1)
    assert (state.view("P")._counts()) == (2, 1)
    assert (state.view("R")._counts()) == (3, 2)


# -- against a recount ------------------------------------------------------------------------


@settings(deadline=None, max_examples=150)
@given(
    audience=st.sampled_from([("P",), ("A", "B"), ("B1", "A"), ("A1",), ()]),
    events=event_lists(SID, 6, ROSTER),  # site 6 is registered later (or never)
    data=st.data(),
)
def test_scoped_views_equal_a_recount(
    audience: tuple[str, ...], events: list[Event], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(events))
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    arrivals = data.draw(st.permutations(order + repeats))

    state = make_state(audience)
    views = {root: state.view(root) for root in SCOPES}
    monitors = {root: view.snapshot() for root, view in views.items()}
    whole = state.snapshot()
    cuts = set(data.draw(st.lists(st.integers(0, len(arrivals)), max_size=4)))
    places = set(data.draw(st.lists(st.integers(0, len(arrivals)), max_size=3)))
    site6 = data.draw(st.sampled_from([None, "B1", "Z"]))
    known = SITES
    if site6 is not None and arrivals:
        known = (*SITES, Site(6, SID, "Điểm xem mới", "broadcast", unit=site6))
    placed: dict[str, str] = {}

    def flush() -> None:
        changes = state.take_changes()
        for root, view in views.items():
            delta = view.delta(changes)
            if delta is not None:
                fold(monitors[root], delta)
        delta = state.delta(changes)
        if delta is not None:
            whole.update(present=delta["present"], unexpected=delta["unexpected"])

    for i, event in enumerate(arrivals):
        if i in places:
            codes = state.take_unplaced()
            placed.update((m, ROSTER[m]) for m in codes)
            state.place_members({m: ROSTER[m] for m in codes})
        if i in cuts:
            flush()
        if i == len(arrivals) // 2 and known is not SITES:
            state.add_site(known[-1])
        state.apply(event)
    flush()

    for root, view in views.items():
        live = view.snapshot()
        assert live == recount(audience, events, root, placed, known), root
        assert monitors[root] == live, root
    # the whole session is what it always was
    assert (whole["present"], whole["unexpected"]) == (
        state.snapshot()["present"],
        state.snapshot()["unexpected"],
    )

    # once every unexpected member is placed, the roots' views add up to the whole tree's
    place_all(state)
    top = state.view("R").snapshot()
    full = state.snapshot()
    assert top["expected"] == full["expected"]
    assert top["present"] == full["present"]
    assert top["unexpected"] == full["unexpected"]
