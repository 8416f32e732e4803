"""A LiveState over a small unit tree, for the live tests (test_live_state, test_live_scope):
the session's clock, and the slow, obvious answers ("is this unit under that one", "who is
expected") that the state's own counts are checked against."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from streamsvc.domain.live import LiveState
from streamsvc.domain.models import Event, Session, Site, Unit

T0 = datetime(2026, 5, 22, 0, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """`seconds` after the session's start."""
    return T0 + timedelta(seconds=seconds)


def unit_tree(*units: Unit) -> dict[str, Unit]:
    """The units by code, as LiveState takes them."""
    return {unit.code: unit for unit in units}


def within(units: Mapping[str, Unit], unit: str | None, root: str) -> bool:
    """`unit` is `root` or under it: a walk up the parents, no index."""
    while unit is not None:
        if unit == root:
            return True
        unit = units[unit].parent
    return False


def members_under(
    units: Mapping[str, Unit], roster: Mapping[str, str], audience: tuple[str, ...]
) -> dict[str, str]:
    """The roster's members (code -> unit) whose unit is within one of the audience's units."""
    return {m: u for m, u in roster.items() if any(within(units, u, root) for root in audience)}


def live_state(
    sid: int,
    units: Mapping[str, Unit],
    expected: Mapping[str, str],
    sites: tuple[Site, ...],
    audience: tuple[str, ...],
) -> LiveState:
    """A three-hour session from T0 for `audience`, expecting `expected`, and its LiveState."""
    session = Session(sid, "NQ", T0, T0 + timedelta(hours=3), audience, expected=len(expected))
    return LiveState(session, units, expected, sites)


@st.composite
def event_lists(draw: st.DrawFn, sid: int, last_site: int, members: Iterable[str]) -> list[Event]:
    """Up to 40 events of session `sid` at sites 1..`last_site` for `members`: check-ins
    (some stored voided), check-outs, headcounts and voids of any event, earlier, later or
    one that never comes; times spread around T0 and received within ten minutes."""
    count = draw(st.integers(0, 40))
    events = []
    for i in range(count):
        kind = draw(st.sampled_from(["checkin"] * 3 + ["void", "guests", "checkout"]))
        site = draw(st.integers(1, last_site))
        ts = at(draw(st.integers(-300, 300)))
        received = at(draw(st.integers(0, 600)))
        member = draw(st.sampled_from(sorted(members)))
        if kind == "void":
            target = f"e{draw(st.integers(0, count))}"
            events.append(Event(f"e{i}", sid, site, "void", None, received, target=target))
        elif kind == "guests":
            n = draw(st.integers(0, 3))
            events.append(Event(f"e{i}", sid, site, "guests", ts, received, count=n))
        else:
            voided = kind == "checkin" and draw(st.integers(0, 9)) == 0
            events.append(Event(f"e{i}", sid, site, kind, ts, received, member, voided=voided))
    return events
