"""LIVE for dashboards at scale: a view's options (`sites` none, `depth` n), checked by hand
and against the same view without options filtered the obvious way; and the per-site table
(`LiveView.sites_page`, `SiteQuery`)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live_world import at, event_lists, live_state, members_under, unit_tree

from streamsvc.domain.live import ALL, LiveOptions, LiveState, SiteQuery
from streamsvc.domain.models import Event, Site, Unit
from streamsvc.errors import InvalidInput

#: every test twice: expected members in a dict and in the compact form (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("expected_form")


SID = 11

# N (nation) -> P, Q (provinces) -> PA, PB, QA (communes) -> PA1, PA2, PB1, QA1 (cells)
UNITS = unit_tree(
    Unit("N", "Trung ương"),
    Unit("P", "Tỉnh P", "N"),
    Unit("Q", "Tỉnh Q", "N"),
    Unit("PA", "Xã PA", "P"),
    Unit("PB", "Xã PB", "P"),
    Unit("QA", "Xã QA", "Q"),
    Unit("PA1", "Chi bộ PA1", "PA"),
    Unit("PA2", "Chi bộ PA2", "PA"),
    Unit("PB1", "Chi bộ PB1", "PB"),
    Unit("QA1", "Chi bộ QA1", "QA"),
)
ROSTER = {
    "M1": "PA1",
    "M2": "PA1",
    "M3": "PA2",
    "M4": "PB1",
    "M5": "PB",
    "M6": "QA1",
    "M7": "Q",
    "M8": "N",
}
SITES = (
    Site(1, SID, "Hội trường Trung ương", "hall"),  # no unit: the whole tree only
    Site(2, SID, "Điểm cầu Đồng Hới", "bridge", unit="PA"),
    Site(3, SID, "Điểm xem Bắc Giang", "broadcast", unit="PB1"),
    Site(4, SID, "Điểm cầu Quảng Ninh", "bridge", unit="Q"),
    Site(5, SID, "Tự học Đông Anh", "self_study", unit="QA1"),
)
ROOTS = (None, "N", "P", "PA", "Q", "QA1")
OPTIONS = [LiveOptions(sites, depth) for sites in (True, False) for depth in (None, 0, 1, 2)]


def make_state(audience: tuple[str, ...] = ("N",)) -> LiveState:
    return live_state(SID, UNITS, members_under(UNITS, ROSTER, audience), SITES, audience)


def checkin(eid: str, member: str, site: int, ts: float = 0) -> Event:
    return Event(eid, SID, site, "checkin", at(ts), at(ts), member=member)


def codes(live: dict[str, Any]) -> list[str]:
    return [unit["code"] for unit in live["units"]]


def trimmed(live: dict[str, Any], options: LiveOptions) -> dict[str, Any]:
    """`live` (a view without options) as the options should leave it: the obvious way."""
    parents = {unit["code"]: unit["parent"] for unit in live["units"]}

    def depth(code: str) -> int:
        parent = parents[code]
        return 0 if parent is None else 1 + depth(parent)

    return {
        **live,
        "sites": live["sites"] if options.sites else [],
        "units": [
            unit
            for unit in live["units"]
            if options.depth is None or depth(unit["code"]) <= options.depth
        ],
    }


def fold_delta(live: dict[str, Any], delta: dict[str, Any]) -> None:
    """What a monitor does with a delta."""
    for key in ("present", "unexpected", "guests"):
        live[key] = delta[key]
    for key, name in (("sites", "id"), ("units", "code")):
        changed = {entry[name]: entry for entry in delta[key]}
        live[key] = [changed.pop(entry[name], entry) for entry in live[key]]
        assert not changed, f"a delta carried {key} the snapshot does not hold: {changed}"
    minutes = {entry["minute"]: entry for entry in delta["curve"]}
    curve = [minutes.pop(entry["minute"], entry) for entry in live["curve"]]
    live["curve"] = sorted(
        (entry for entry in [*curve, *minutes.values()] if entry["checkins"]),
        key=lambda entry: entry["minute"],
    )


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sites", "depth", "expected"),
    [
        (None, None, ALL),
        ("all", None, ALL),
        ("none", None, LiveOptions(sites=False)),
        ("none", 1, LiveOptions(False, 1)),
        (None, 0, LiveOptions(True, 0)),
        (None, 999, LiveOptions(True, 999)),
    ],
)
def test_options_are_read_from_a_hello(sites, depth, expected):
    assert LiveOptions.parse(sites, depth) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ALL),
        ({"sites": "", "depth": ""}, ALL),
        ({"sites": "none", "depth": "2"}, LiveOptions(False, 2)),
        ({"depth": "0"}, LiveOptions(True, 0)),
    ],
)
def test_options_are_read_from_a_query(query, expected):
    assert LiveOptions.from_query(query) == expected


@pytest.mark.parametrize(
    ("sites", "depth", "field"),
    [
        ("some", None, "sites"),
        (False, None, "sites"),
        (None, -1, "depth"),
        (None, True, "depth"),
        (None, 1.5, "depth"),
        (None, 1000, "depth"),
        (None, "1", "depth"),  # a hello's depth is a number
    ],
)
def test_bad_options_name_their_field(sites, depth, field):
    with pytest.raises(InvalidInput) as caught:
        LiveOptions.parse(sites, depth)
    assert caught.value.details == {"field": field}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"sites": "some"}, "sites"),
        ({"depth": "x"}, "depth"),
        ({"depth": "-1"}, "depth"),
        ({"depth": "1000"}, "depth"),
        ({"depth": "１"}, "depth"),  # a full-width digit is a digit to str.isdigit
    ],
)
def test_a_bad_query_names_its_field(query, field):
    with pytest.raises(InvalidInput) as caught:
        LiveOptions.from_query(query)
    assert caught.value.details == {"field": field}


def test_depth_zero_is_the_roots_only_and_depth_one_their_children():
    state = make_state(("P", "Q"))
    assert codes(state.view(None, LiveOptions(depth=0)).snapshot()) == ["P", "Q"]
    assert codes(state.view(None, LiveOptions(depth=1)).snapshot()) == ["P", "PA", "PB", "Q", "QA"]
    # a view's root is its own depth 0, wherever it lies in the tree
    assert codes(state.view("PA", LiveOptions(depth=0)).snapshot()) == ["PA"]
    assert codes(state.view("PA", LiveOptions(depth=1)).snapshot()) == ["PA", "PA1", "PA2"]
    # a scope above the audience: the audience roots it holds are the view's roots
    assert codes(state.view("N", LiveOptions(depth=0)).snapshot()) == ["P", "Q"]


def test_sites_none_keeps_the_totals_and_drops_the_sites():
    state = make_state()
    state.apply(checkin("e1", "M1", 2))
    state.apply(Event("g1", SID, 3, "guests", at(0), at(0), count=4))
    full, slim = state.view(None).snapshot(), state.view(None, LiveOptions(False, 1)).snapshot()
    assert slim["sites"] == []
    assert codes(slim) == ["N", "P", "Q"]
    for key in ("session", "expected", "present", "guests", "unexpected", "curve"):
        assert slim[key] == full[key], key
    scoped = state.view("P", LiveOptions(sites=False)).snapshot()
    assert scoped["sites"] == [] and scoped["guests"] == 4 and scoped["present"] == 1


def test_a_deep_checkin_moves_the_totals_and_the_visible_ancestors_only():
    state = make_state()
    view = state.view(None, LiveOptions(False, 1))
    view.snapshot()
    state.apply(checkin("e1", "M1", 2))
    delta = view.delta(state.take_changes())
    assert delta is not None
    assert delta["present"] == 1 and delta["sites"] == []
    assert [(u["code"], u["present"]) for u in delta["units"]] == [("N", 1), ("P", 1)]
    assert [entry["checkins"] for entry in delta["curve"]] == [1]


def test_no_delta_when_only_what_the_options_leave_out_changed():
    state = make_state()
    state.apply(checkin("e1", "M1", 2))
    state.take_changes()
    slim = state.view(None, LiveOptions(False, 0))
    full = state.view(None)
    # a coordinator connecting, and a second check-in of someone present: sites only
    state.set_connected(4, True)
    state.apply(checkin("e2", "M1", 4, ts=1))
    changes = state.take_changes()
    assert full.delta(changes) is not None
    delta = slim.delta(changes)
    assert delta is not None and delta["units"] == [] and delta["sites"] == []
    assert delta["curve"], "the whole tree's curve still moves"
    # in a scope there is no curve: nothing it shows changed
    scoped = state.view("P", LiveOptions(False, 0))
    state.set_connected(2, True)
    assert scoped.delta(state.take_changes()) is None


# -- against the view without options ---------------------------------------------------------


@settings(deadline=None, max_examples=100)
@given(
    audience=st.sampled_from([("N",), ("P", "Q"), ("PA", "QA"), ("PB1",)]),
    events=event_lists(SID, 5, ROSTER),
    cuts=st.sets(st.integers(0, 30), max_size=4),
    connects=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 5)), max_size=4),
)
def test_each_view_with_options_is_the_view_without_them_trimmed(
    audience: tuple[str, ...],
    events: list[Event],
    cuts: set[int],
    connects: list[tuple[int, int]],
) -> None:
    state = make_state(audience)
    views = {(root, options): state.view(root, options) for root in ROOTS for options in OPTIONS}
    monitors = {key: view.snapshot() for key, view in views.items()}

    def flush() -> None:
        changes = state.take_changes()
        for key, view in views.items():
            delta = view.delta(changes)
            if delta is not None:
                fold_delta(monitors[key], delta)

    for i, event in enumerate(events):
        if i in cuts:
            flush()
        for when, site in connects:
            if when == i:
                state.set_connected(site, True)
        state.apply(event)
    flush()

    for (root, options), view in views.items():
        live = view.snapshot()
        assert live == trimmed(state.view(root).snapshot(), options), (root, options)
        assert monitors[root, options] == live, (root, options)


# -- the per-site table -----------------------------------------------------------------------


def page(state: LiveState, root: str | None = None, **query: str) -> tuple[list[Any], int]:
    sites, total = state.view(root).sites_page(SiteQuery.parse(query))
    return [site["id"] for site in sites], total


def test_sites_page_filters_by_scope_kind_silence_and_folded_name():
    state = make_state()
    state.set_connected(2, True)
    state.set_connected(4, True)
    assert page(state) == ([2, 4, 3, 1, 5], 5)  # by name, accents folded
    assert page(state, "P") == ([2, 3], 2)  # a site with no unit: the whole tree only
    assert page(state, "Q") == ([4, 5], 2)
    assert page(state, kind="bridge") == ([2, 4], 2)
    assert page(state, silent="true") == ([3, 1, 5], 3)
    assert page(state, silent="false") == ([2, 4], 2)
    assert page(state, q="dong") == ([2, 5], 2)  # "Đồng" and "Đông"
    assert page(state, q="  ĐIỂM  cầu ") == ([2, 4], 2)
    assert page(state, "P", q="quang") == ([], 0)
    assert page(state, kind="hall", silent="true", q="trung") == ([1], 1)


def test_sites_page_orders_and_pages():
    state = make_state()
    state.apply(checkin("e1", "M1", 3, ts=10))
    state.apply(checkin("e2", "M2", 3, ts=20))
    state.apply(checkin("e3", "M6", 5, ts=5))
    assert page(state, order="present") == ([3, 5, 2, 4, 1], 5)
    # the quietest first: never heard from (by id), then the longest silent
    assert page(state, order="last_event_at") == ([1, 2, 4, 5, 3], 5)
    assert page(state, limit="2") == ([2, 4], 5)
    assert page(state, limit="2", offset="4") == ([5], 5)
    assert page(state, offset="9") == ([], 5)
    sites, _total = state.view(None).sites_page(SiteQuery(order="present", limit=1))
    assert sites == [state.view(None).snapshot()["sites"][2]]  # LIVE's site, as it is


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"kind": "stadium"}, "kind"),
        ({"silent": "yes"}, "silent"),
        ({"order": "guests"}, "order"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "99999999999"}, "offset"),
        ({"q": "a\x00b"}, "q"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_a_bad_site_query_names_its_field(query, field):
    with pytest.raises(InvalidInput) as caught:
        SiteQuery.parse(query)
    assert caught.value.details == {"field": field}


def test_a_site_query_has_defaults():
    assert SiteQuery.parse({}) == SiteQuery(None, None, "", "name", 100, 0)
    assert SiteQuery.parse({"limit": "1000", "q": "Nguyễn"}).q == "nguyen"
