"""The live counts of one session, kept up to date one stored event at a time.

A pure structure (no asyncio, no I/O): the web layer feeds it every accepted event, from its
own instance and from the bus, and sends `snapshot()` and `take_delta()` to the monitors. It
never recounts: each event costs O(depth of the unit tree), because check-ins arrive in bursts
of thousands a second in the half hour before a session starts.

Scoped views (`LiveState.view(root)`): a user whose scope is a unit's subtree, or a monitor
narrowed to one, sees LIVE restricted to that subtree, read from counters that exist anyway,
so the check-in path does no work per scope and a view costs O(audience roots) per delta:

- expected and present: the unit counters of the audience subtrees (a scope inside a subtree
  reads its own unit's; a scope above them sums the roots it holds); expected members whose
  unit lies outside the subtrees (a make-up session's) are counted apart on their unit's
  ancestors in the whole tree, as they are few.
- unexpected: counted on the ancestors of the member's unit. A check-in does not carry its
  member's unit, so an unexpected member's unit is looked up once by the caller (the hub
  reads it from the store off the check-in path: `take_unplaced` / `place_members`); until
  then the member counts in the whole session only. Unexpected check-ins are the rare case,
  and nothing on the wire, in the events or in the stores had to change.
- guests: each site's headcount is added on the ancestors of the site's unit; a site with no
  unit is seen by the whole tree only. `sites` are those whose unit lies in the scope.
- the per-minute curve counts every check-in of the session and cannot be split by scope
  without work per check-in: a scoped view sends it empty.

The tree the views use is the one the state was built with (`units`).

Options for a dashboard at scale (`LiveOptions`, part of a view's key): `sites` none leaves
LIVE's `sites` empty (the per-site table is read page by page: `LiveView.sites_page`), and
`depth` n keeps only the units at most n levels below the view's root(s). A unit's depth is
known from its chain when the audience subtrees are numbered, and a subtree is a range of
indexes, so a view at a depth skips whole subtrees in a snapshot and tests a changed unit in
O(1) in a delta: the options, like the scopes, cost nothing per check-in.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from streamsvc.domain.expected import ExpectedChains
from streamsvc.domain.models import Event, Form, Session, Site, Unit
from streamsvc.domain.text import fold
from streamsvc.domain.timefmt import format_ts
from streamsvc.errors import InvalidInput

__all__ = [
    "ALL",
    "MAX_SITES_PAGE",
    "SITE_ORDERS",
    "Changes",
    "LiveOptions",
    "LiveState",
    "LiveView",
    "SiteQuery",
]

#: Sites in one page of `LiveView.sites_page` at most.
MAX_SITES_PAGE = 1000
#: How a page of sites may be ordered: name A to Z, most present first, quietest first.
SITE_ORDERS = ("name", "present", "last_event_at")
_KINDS: tuple[str, ...] = get_args(Form)


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """What a monitor asks LIVE to carry: every site or none, and units down to `depth`
    levels below the view's root(s) (None: all). Monitors of one session, scope and options
    share one delta per flush."""

    sites: bool = True
    depth: int | None = None

    @classmethod
    def parse(cls, sites: object = None, depth: object = None) -> LiveOptions:
        """From a hello's values (None: the default); `InvalidInput` names the bad field."""
        if sites not in (None, "all", "none"):
            raise InvalidInput('sites must be "all" or "none"', {"field": "sites"})
        if depth is not None and (
            not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 999
        ):
            raise InvalidInput("depth must be a whole number from 0 to 999", {"field": "depth"})
        return cls(sites != "none", depth)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> LiveOptions:
        """From a query string's `sites` and `depth` (a string of digits)."""
        depth: object = query.get("depth") or None
        if isinstance(depth, str):
            depth = int(depth) if depth.isascii() and depth.isdigit() and len(depth) < 4 else -1
        return cls.parse(query.get("sites") or None, depth)


#: The default: LIVE as in v1, every site and every unit.
ALL = LiveOptions()


@dataclass(frozen=True, slots=True)
class SiteQuery:
    """One page of a session's per-site table: filters, order and window."""

    kind: str | None = None
    silent: bool | None = None
    q: str = ""
    order: str = "name"
    limit: int = 100
    offset: int = 0

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> SiteQuery:
        """From a request's query string (`unit` is the caller's scope's business, not
        read here); `InvalidInput` names the bad field."""
        kind = query.get("kind") or None
        if kind is not None and kind not in _KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(_KINDS)}", {"field": "kind"})
        silent_raw = query.get("silent") or None
        if silent_raw not in (None, "true", "false"):
            raise InvalidInput("silent must be true or false", {"field": "silent"})
        order = query.get("order") or "name"
        if order not in SITE_ORDERS:
            raise InvalidInput(f"order must be one of {', '.join(SITE_ORDERS)}", {"field": "order"})
        q = query.get("q") or ""
        if "\x00" in q or len(q) > 200:
            raise InvalidInput("q must be text of at most 200 characters", {"field": "q"})
        return cls(
            kind,
            None if silent_raw is None else silent_raw == "true",
            fold(q),
            order,
            _whole(query.get("limit"), "limit", 100, 1, MAX_SITES_PAGE),
            _whole(query.get("offset"), "offset", 0, 0, 2**31 - 1),
        )


def _whole(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or not low <= int(raw) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}", {"field": name})
    return int(raw)


_MINUTE = timedelta(minutes=1)


class _SiteLive:
    """The counters of one site. `site` stays None while an event names a site this state
    was not told about yet (registered on another instance); it is hidden until `add_site`."""

    __slots__ = (
        "connections",
        "folded",
        "guests",
        "guests_key",
        "id",
        "last_event_at",
        "members",
        "placed_at",
        "present",
        "site",
    )

    def __init__(self, site_id: int, site: Site | None) -> None:
        self.id = site_id
        self.site = site
        # the name accent-folded once, for the per-site table's search and order
        self.folded = fold(site.name) if site is not None else ""
        # member code -> non-voided check-ins of that member here
        self.members: dict[str, int] = {}
        self.present = 0
        self.guests = 0
        # (ts, event id) of the headcount in force; the id breaks ties so that every
        # instance settles on the same headcount whatever order the bus delivered them in
        self.guests_key: tuple[datetime, str] | None = None
        self.connections = 0
        self.last_event_at: datetime | None = None
        # the unit whose ancestors hold this site's guests in the per-unit counters
        self.placed_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        site = self.site
        assert site is not None
        return {
            "id": self.id,
            "name": site.name,
            "kind": site.kind,
            "unit": site.unit,
            "capacity": site.capacity,
            "present": self.present,
            "guests": self.guests,
            "connected": self.connections > 0,
            "last_event_at": format_ts(self.last_event_at),
        }


# A counting check-in, kept so that a later void knows what to take back:
# (member code, its site, its minute of ts).
#: A counted check-in, kept to undo it on a void: (member, site id, minute). Only atoms, so
#: the garbage collector stops tracking each tuple after its first pass: with the site's
#: object in it, 2,000,000 tuples stayed tracked and every full collection walked them all,
#: a pause of most of a second on an instance on the national day.
_Checkin = tuple[str, int, int]


class LiveState:
    """What the monitors of one session see: counts per session, site and unit, and a
    per-minute check-in curve, plus the set of what changed since the last delta."""

    def __init__(
        self,
        session: Session,
        units: Mapping[str, Unit],
        expected_units: Mapping[str, str],
        sites: Iterable[Site] = (),
    ) -> None:
        """`units` is the whole tree; the audience roots come from `session.audience`.
        `expected_units` maps every expected member's code to the code of its unit."""
        self._session_id = session.id
        # the expected set itself is the truth; `session.expected` is the store's count of it
        self._expected = len(expected_units)
        self._units = units

        self._unit_codes: list[str] = []
        self._unit_names: list[str] = []
        # the parent within the audience subtrees (None for a root), so pages can draw the tree
        self._unit_parents: list[str | None] = []
        # levels below its audience root (0 for a root), for the views' `depth`
        self._unit_depth: list[int] = []
        unit_chains = self._build_units(session.audience, units)
        self._unit_expected = [0] * len(self._unit_codes)
        self._unit_present = [0] * len(self._unit_codes)
        # numbered depth-first, a unit's subtree is the indexes from its own to `_unit_end`
        self._unit_index = {code: chain[0] for code, chain in unit_chains.items()}
        self._unit_end = list(range(1, len(self._unit_codes) + 1))
        for chain in sorted(unit_chains.values(), reverse=True):
            if len(chain) > 1:
                self._unit_end[chain[1]] = max(self._unit_end[chain[1]], self._unit_end[chain[0]])
        self._roots = [i for i, parent in enumerate(self._unit_parents) if parent is None]

        # expected member -> indexes of its unit and that unit's ancestors in the audience
        # subtrees; the tuples are shared by all members of a unit. A member whose unit lies
        # outside the subtrees (a make-up session's excused members) gets (): counted, no unit
        # in `units`, and counted apart for the scoped views (`_loose_*`). Compact past
        # 200,000 members (`ExpectedChains`).
        self._chains = ExpectedChains(expected_units, unit_chains)
        self._loose_units: dict[str, str] = {}
        self._loose_expected_at: dict[str, int] = {}
        self._loose_present_at: dict[str, int] = {}
        unit_expected = self._unit_expected
        per_unit: dict[str, int] = {}
        for unit in expected_units.values():
            per_unit[unit] = per_unit.get(unit, 0) + 1
        for unit, count in per_unit.items():
            chain = unit_chains.get(unit, ())
            for index in chain:
                unit_expected[index] += count
            if not chain:
                self._add_up(self._loose_expected_at, unit, count)
        if any(unit not in unit_chains for unit in per_unit):
            self._loose_units = {m: u for m, u in expected_units.items() if u not in unit_chains}

        # unexpected members: their units once known (`place_members`), those counted but not
        # yet placed, those not yet asked about, and the count on each unit's ancestors
        self._member_units: dict[str, str] = {}
        self._unplaced: set[str] = set()
        self._to_place: set[str] = set()
        self._unexpected_at: dict[str, int] = {}
        # guest headcounts on the ancestors of each site's unit
        self._guests_at: dict[str, int] = {}

        self._sites: dict[int, _SiteLive] = {}
        # the sites by folded name, for the per-site table; remade when a site is added
        self._by_name: list[_SiteLive] | None = None
        for site in sites:
            entry = self._sites[site.id] = _SiteLive(site.id, site)
            entry.placed_at = site.unit

        # every event id seen -> its counting check-in, or None (any other event, or a
        # check-in that is voided): one dict lookup makes apply idempotent and finds void targets
        self._events: dict[str, _Checkin | None] = {}
        # ids of check-ins voided before they arrived (events over a bus come out of order)
        self._pending_voids: set[str] = set()
        self._member_checkins: dict[str, int] = {}
        self._present = 0
        self._unexpected = 0
        self._guests = 0
        # the curve is keyed by minutes since the epoch (an int is cheaper to hash and keep
        # than a datetime); check-ins come in bursts within one minute, so the last minute's
        # bounds are kept to spare a timestamp() per check-in
        self._curve: dict[int, int] = {}
        self._minute = 0
        self._minute_from = self._minute_to = datetime.min.replace(tzinfo=UTC)

        self._totals_changed = False
        self._changed_sites: set[_SiteLive] = set()
        self._changed_units: set[int] = set()
        self._changed_minutes: set[int] = set()

    def _build_units(
        self, audience: Iterable[str], units: Mapping[str, Unit]
    ) -> dict[str, tuple[int, ...]]:
        """Number the audience subtrees depth-first (the order of LIVE's `units`) and give
        each unit the chain of indexes of itself and its ancestors within the subtrees."""
        wanted = [code for code in dict.fromkeys(audience) if code in units]
        wanted_set = set(wanted)
        roots = []
        for code in wanted:
            # a root inside another root's subtree is already counted there
            parent, seen = units[code].parent, {code}
            while parent is not None and parent not in wanted_set and parent not in seen:
                seen.add(parent)
                parent = units[parent].parent if parent in units else None
            if parent is None or parent in seen:
                roots.append(code)

        children: dict[str, list[str]] = {}
        for unit in units.values():
            if unit.parent is not None and unit.parent != unit.code:
                children.setdefault(unit.parent, []).append(unit.code)
        for kids in children.values():
            kids.sort()

        chains: dict[str, tuple[int, ...]] = {}
        stack: list[tuple[str, tuple[int, ...]]] = [(code, ()) for code in reversed(roots)]
        while stack:
            code, above = stack.pop()
            if code in chains:  # only a cycle in bad data gets here
                continue
            index = len(self._unit_codes)
            self._unit_codes.append(code)
            self._unit_names.append(units[code].name)
            self._unit_parents.append((above and self._unit_codes[above[0]]) or None)
            self._unit_depth.append(len(above))
            chain = (index, *above)
            chains[code] = chain
            stack.extend((kid, chain) for kid in reversed(children.get(code, ())))
        return chains

    # -- sites and connections ------------------------------------------------------------

    def _site(self, site_id: int) -> _SiteLive:
        entry = self._sites.get(site_id)
        if entry is None:
            entry = self._sites[site_id] = _SiteLive(site_id, None)
        return entry

    def add_site(self, site: Site) -> None:
        """Show a site registered after this state was built (or update its name and kind)."""
        entry = self._site(site.id)
        if entry.site != site:
            entry.site = site
            entry.folded = fold(site.name)
            self._by_name = None
            self._changed_sites.add(entry)
        if entry.placed_at != site.unit:
            if entry.guests:
                self._add_up(self._guests_at, entry.placed_at, -entry.guests)
                self._add_up(self._guests_at, site.unit, entry.guests)
                self._totals_changed = True
            entry.placed_at = site.unit

    def _add_up(self, counters: dict[str, int], unit: str | None, n: int) -> None:
        """Add `n` to `unit` and each of its ancestors in the whole tree (not on the hot
        path: for sites' guests, unexpected members and members outside the audience)."""
        units = self._units
        steps = len(units)
        code = unit
        while code is not None and steps >= 0:
            counters[code] = counters.get(code, 0) + n
            found = units.get(code)
            code = found.parent if found is not None else None
            steps -= 1  # a cycle in bad data ends the walk

    def _within(self, code: str | None, root: str) -> bool:
        """Whether `code` is `root` or below it in the whole tree."""
        units = self._units
        steps = len(units)
        while code is not None and steps >= 0:
            if code == root:
                return True
            found = units.get(code)
            code = found.parent if found is not None else None
            steps -= 1
        return False

    def set_connected(self, site_id: int, connected: bool) -> None:
        """Count one coordinator device connecting (True) or leaving (False); several devices
        may serve one site, which stays connected while any of them is."""
        entry = self._site(site_id)
        self._set_connections(entry, entry.connections + (1 if connected else -1))

    def set_connections(self, site_id: int, count: int) -> None:
        """Set the number of connected devices outright, for syncing across instances."""
        if count < 0:
            raise ValueError(f"negative connection count {count} for site {site_id}")
        self._set_connections(self._site(site_id), count)

    def _set_connections(self, entry: _SiteLive, count: int) -> None:
        count = max(count, 0)
        if (count > 0) != (entry.connections > 0):
            self._changed_sites.add(entry)
        entry.connections = count

    # -- events ---------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Apply one accepted, stored event. Applying an event id a second time does nothing,
        since each instance gets its own events both directly and back from the bus."""
        events = self._events
        event_id = event.id
        if event_id in events:
            return
        if event.session_id != self._session_id:
            raise ValueError(f"event {event_id} is for session {event.session_id}")
        kind = event.type
        if kind == "checkin":
            member = event.member
            if member is None:
                raise ValueError(f"check-in {event_id} names no member")
            site = self._site(event.site_id)
            self._touch(site, event.received_at)
            pending = self._pending_voids
            if event.voided or (pending and event_id in pending):
                pending.discard(event_id)
                events[event_id] = None
                return
            ts = event.ts or event.received_at
            if self._minute_from <= ts < self._minute_to:
                minute = self._minute
            else:
                minute = self._enter_minute(ts)
            events[event_id] = (member, site.id, minute)
            self._count_in(member, site, minute)
        elif kind == "void":
            target = event.target
            if target is None:
                raise ValueError(f"void {event_id} names no target")
            events[event_id] = None
            self._touch(self._site(event.site_id), event.received_at)
            if target not in events:
                self._pending_voids.add(target)
                return
            checkin = events[target]
            if checkin is not None:  # else not a check-in, or voided already
                events[target] = None
                member, site_id, minute = checkin
                self._count_out(member, self._sites[site_id], minute)
        elif kind == "guests":
            count = event.count
            if count is None:
                raise ValueError(f"guests {event_id} has no count")
            events[event_id] = None
            site = self._site(event.site_id)
            self._touch(site, event.received_at)
            self._pending_voids.discard(event_id)
            key = (event.ts or event.received_at, event_id)
            if site.guests_key is None or key > site.guests_key:
                site.guests_key = key
                if count != site.guests:
                    self._guests += count - site.guests
                    if site.placed_at is not None:
                        self._add_up(self._guests_at, site.placed_at, count - site.guests)
                    site.guests = count
                    self._totals_changed = True
                    self._changed_sites.add(site)
        elif kind == "checkout":
            # a checkout shortens a stay (attendance minutes) but LIVE counts check-ins
            events[event_id] = None
            self._touch(self._site(event.site_id), event.received_at)
            self._pending_voids.discard(event_id)
        else:
            raise ValueError(f"event {event_id} has unknown type {kind!r}")

    def _enter_minute(self, ts: datetime) -> int:
        """The minute of a check-in outside the cached one. Only a later minute replaces the
        cache: the burst moves forward, and a late offline upload must not thrash it."""
        minute = int(ts.timestamp() // 60)
        if minute > self._minute:
            self._minute = minute
            self._minute_from = datetime.fromtimestamp(minute * 60, UTC)
            self._minute_to = self._minute_from + _MINUTE
        return minute

    def _touch(self, site: _SiteLive, received_at: datetime) -> None:
        last = site.last_event_at
        if last is None or received_at > last:
            site.last_event_at = received_at
            self._changed_sites.add(site)

    def _count_in(self, member: str, site: _SiteLive, minute: int) -> None:
        """Add one check-in; a count moves only when the member's first check-in, here or
        anywhere, arrives. This is the hot path: no allocation beyond dict entries."""
        here = site.members
        n = here.get(member, 0)
        here[member] = n + 1
        if not n:
            site.present += 1
            self._changed_sites.add(site)

        everywhere = self._member_checkins
        n = everywhere.get(member, 0)
        everywhere[member] = n + 1
        if not n:
            self._totals_changed = True
            chain = self._chains.get(member)
            if chain is None:
                self._unexpected += 1
                self._unexpected_in(member)
            else:
                self._present += 1
                present = self._unit_present
                for index in chain:
                    present[index] += 1
                self._changed_units.update(chain)
                if not chain:
                    self._add_up(self._loose_present_at, self._loose_units[member], 1)

        curve = self._curve
        curve[minute] = curve.get(minute, 0) + 1
        self._changed_minutes.add(minute)

    def _count_out(self, member: str, site: _SiteLive, minute: int) -> None:
        """Take one check-in back; the member stops counting with their last one."""
        here = site.members
        n = here[member] - 1
        if n:
            here[member] = n
        else:
            del here[member]
            site.present -= 1
            self._changed_sites.add(site)

        everywhere = self._member_checkins
        n = everywhere[member] - 1
        if n:
            everywhere[member] = n
        else:
            del everywhere[member]
            self._totals_changed = True
            chain = self._chains.get(member)
            if chain is None:
                self._unexpected -= 1
                self._unexpected_out(member)
            else:
                self._present -= 1
                present = self._unit_present
                for index in chain:
                    present[index] -= 1
                self._changed_units.update(chain)
                if not chain:
                    self._add_up(self._loose_present_at, self._loose_units[member], -1)

        curve = self._curve
        n = curve[minute] - 1
        if n:
            curve[minute] = n
        else:
            del curve[minute]
        self._changed_minutes.add(minute)

    # -- unexpected members' units -----------------------------------------------------------

    def _unexpected_in(self, member: str) -> None:
        unit = self._member_units.get(member)
        if unit is None:
            self._unplaced.add(member)
            self._to_place.add(member)
        else:
            self._add_up(self._unexpected_at, unit, 1)

    def _unexpected_out(self, member: str) -> None:
        if member in self._unplaced:
            self._unplaced.discard(member)
            self._to_place.discard(member)
        else:
            self._add_up(self._unexpected_at, self._member_units[member], -1)

    def take_unplaced(self) -> list[str]:
        """The unexpected members counted since the last call whose unit is not known yet:
        the caller looks them up and hands the answer to `place_members`."""
        if not self._to_place:
            return []
        codes = sorted(self._to_place)
        self._to_place.clear()
        return codes

    def retry_unplaced(self, members: Iterable[str]) -> None:
        """Ask again about members a failed lookup did not place."""
        self._to_place.update(m for m in members if m in self._unplaced)

    def place_members(self, units: Mapping[str, str]) -> None:
        """Learn unexpected members' units (member code -> unit code), so the scoped views
        count them; a member still counted moves from the whole session into its unit."""
        for member, unit in units.items():
            if member in self._chains or member in self._member_units:
                continue
            self._member_units[member] = unit
            if member in self._unplaced:
                self._unplaced.discard(member)
                self._to_place.discard(member)
                self._add_up(self._unexpected_at, unit, 1)
                self._totals_changed = True

    # -- output ---------------------------------------------------------------------------

    def _unit_dict(self, index: int) -> dict[str, Any]:
        return {
            "code": self._unit_codes[index],
            "name": self._unit_names[index],
            "parent": self._unit_parents[index],
            "expected": self._unit_expected[index],
            "present": self._unit_present[index],
        }

    def _minute_dict(self, minute: int) -> dict[str, Any]:
        moment = datetime.fromtimestamp(minute * 60, UTC)
        return {"minute": format_ts(moment), "checkins": self._curve.get(minute, 0)}

    def site_presence(
        self, site_id: int, among: Iterable[str]
    ) -> tuple[set[str], set[str], int | None]:
        """(those of `among` checked in at the session, the members checked in at this site,
        the site's guest headcount in force or None): what a site's check-in page starts
        from. `among` is the page's list: the session may hold 2,000,000 check-ins."""
        everywhere = self._member_checkins
        present = {code for code in among if code in everywhere}
        site = self._sites.get(site_id)
        if site is None:
            return present, set(), None
        guests = site.guests if site.guests_key is not None else None
        return present, set(site.members), guests

    def snapshot(self) -> dict[str, Any]:
        """The contract's LIVE, plus `curve`: check-ins per minute of `ts`, oldest first."""
        sites = sorted((s for s in self._sites.values() if s.site is not None), key=_site_id)
        return {
            "session": self._session_id,
            "expected": self._expected,
            "present": self._present,
            "guests": self._guests,
            "sites": [site.as_dict() for site in sites],
            "unexpected": self._unexpected,
            "units": [self._unit_dict(index) for index in range(len(self._unit_codes))],
            "curve": [self._minute_dict(minute) for minute in sorted(self._curve)],
        }

    def take_changes(self) -> Changes | None:
        """What changed since the last call, taken once per flush and shared by the whole
        session's delta (`delta`) and every scoped view's (`LiveView.delta`); or None."""
        sites = sorted((s for s in self._changed_sites if s.site is not None), key=_site_id)
        units = sorted(self._changed_units)
        minutes = sorted(self._changed_minutes)
        totals = self._totals_changed
        self._totals_changed = False
        self._changed_sites.clear()
        self._changed_units.clear()
        self._changed_minutes.clear()
        if not (totals or sites or units or minutes):
            return None
        return Changes(totals, sites, units, minutes, self._unit_dict)

    def delta(self, changes: Changes | None) -> dict[str, Any] | None:
        """The whole session's delta for `changes` (the totals always, then only the changed
        sites, units and minutes, a minute whose check-ins were all voided showing 0)."""
        if changes is None:
            return None
        return {
            "present": self._present,
            "unexpected": self._unexpected,
            "guests": self._guests,
            "sites": [entry for _site, entry in changes.sites],
            "units": [entry for _index, entry in changes.units],
            "curve": [self._minute_dict(minute) for minute in changes.minutes],
        }

    def take_delta(self) -> dict[str, Any] | None:
        """What changed since the last call for the whole session, or None."""
        return self.delta(self.take_changes())

    def view(self, root: str | None, options: LiveOptions = ALL) -> LiveView:
        """LIVE restricted to the subtree of `root` (None: the whole tree), carrying what
        `options` asks for."""
        return LiveView(self, root, options)


class Changes:
    """What changed in one flush: the changed sites (by id) and units (by index), each
    one's dict made once, when a view first wants it (a dashboard at scale asks for no
    sites at all).

    With 20,000 cells and a few thousand check-ins a second, most changed units are cells
    that only the few commune-level monitors on an instance show: a dict for every one of
    them, and every view testing every one, cost 45% of an instance's CPU at the national
    day's peak. A view takes its own part of `unit_indexes` by bisection instead (a subtree
    is a range of indexes)."""

    __slots__ = (
        "_entries",
        "_site_entries",
        "_unit_dict",
        "changed_sites",
        "minutes",
        "totals",
        "unit_indexes",
    )

    def __init__(
        self,
        totals: bool,
        changed_sites: list[_SiteLive],
        unit_indexes: list[int],
        minutes: list[int],
        unit_dict: Callable[[int], dict[str, Any]],
    ) -> None:
        self.totals = totals
        self.changed_sites = changed_sites
        self._site_entries: dict[int, dict[str, Any]] = {}
        self.unit_indexes = unit_indexes
        self.minutes = minutes
        self._unit_dict = unit_dict
        self._entries: dict[int, dict[str, Any]] = {}

    def unit_entry(self, index: int) -> dict[str, Any]:
        """The changed unit's dict, the same object for every view of this flush."""
        entry = self._entries.get(index)
        if entry is None:
            entry = self._entries[index] = self._unit_dict(index)
        return entry

    def site_entry(self, site: _SiteLive) -> dict[str, Any]:
        """The changed site's dict, the same object for every view of this flush."""
        entry = self._site_entries.get(site.id)
        if entry is None:
            entry = self._site_entries[site.id] = site.as_dict()
        return entry

    @property
    def sites(self) -> list[tuple[_SiteLive, dict[str, Any]]]:
        """Every changed site with its dict, by id."""
        return [(site, self.site_entry(site)) for site in self.changed_sites]

    @property
    def units(self) -> list[tuple[int, dict[str, Any]]]:
        """Every changed unit with its dict, in index order."""
        return [(index, self.unit_entry(index)) for index in self.unit_indexes]


class LiveView:
    """LIVE of one session restricted to a subtree and carrying what its options ask for:
    made once per (session, scope, options) that has monitors, it reads the state's counters
    (O(audience roots) per snapshot or delta) and never adds work to a check-in. `root` None
    with the default options is the whole session, exactly as the state."""

    def __init__(self, state: LiveState, root: str | None, options: LiveOptions = ALL) -> None:
        self.state = state
        self.root = root
        self.options = options
        self._site_in: dict[str | None, bool] = {}
        self._ranges: list[tuple[int, int]] = []
        self._last: tuple[int, int, int] | None = None
        # the state's sites by name, and those of them in the view (kept while it lasts)
        self._by_name: tuple[list[_SiteLive], list[_SiteLive]] | None = None
        # v1's LIVE: the state's own snapshot and delta
        self._plain = root is None and options == ALL
        if root is None:
            self._ranges = [(r, state._unit_end[r]) for r in state._roots]
        else:
            index = state._unit_index.get(root)
            if index is not None:
                self._ranges = [(index, state._unit_end[index])]
            else:
                self._ranges = [
                    (r, state._unit_end[r])
                    for r in state._roots
                    if state._within(state._unit_codes[r], root)
                ]
        self._sorted_ranges = sorted(self._ranges)
        if not self._plain:
            self._last = self._totals()

    def _covers_site(self, site: _SiteLive) -> bool:
        if self.root is None:
            return True
        info = site.site
        unit = info.unit if info is not None else None
        found = self._site_in.get(unit)
        if found is None:
            found = self._site_in[unit] = unit is not None and self.state._within(unit, self.root)
        return found

    def _changed_units(self, changes: Changes) -> list[dict[str, Any]]:
        """The view's changed units in index order: each subtree's part of the sorted
        indexes found by bisection, then kept if within `depth` of the subtree's top."""
        indexes, unit_depth, depth = (
            changes.unit_indexes,
            self.state._unit_depth,
            self.options.depth,
        )
        units: list[dict[str, Any]] = []
        for lo, hi in self._sorted_ranges:
            start = bisect_left(indexes, lo)
            stop = bisect_left(indexes, hi, start)
            deepest = None if depth is None else unit_depth[lo] + depth
            for index in indexes[start:stop]:
                if deepest is None or unit_depth[index] <= deepest:
                    units.append(self._unit_dict(index, changes.unit_entry(index)))
        return units

    def _unit_indexes(self) -> Iterable[int]:
        """The view's units in LIVE's order; at a depth, each subtree below it is skipped
        whole (a range of indexes), so a shallow view of a big tree costs what it shows."""
        state, depth = self.state, self.options.depth
        for lo, hi in self._ranges:
            if depth is None:
                yield from range(lo, hi)
                continue
            unit_depth, unit_end = state._unit_depth, state._unit_end
            deepest = unit_depth[lo] + depth
            index = lo
            while index < hi:
                yield index
                index = unit_end[index] if unit_depth[index] >= deepest else index + 1

    def _counts(self) -> tuple[int, int]:
        """(expected, present) in the scope."""
        state, root = self.state, self.root
        if root is None:
            return state._expected, state._present
        expected = state._loose_expected_at.get(root, 0)
        present = state._loose_present_at.get(root, 0)
        for lo, _hi in self._ranges:
            expected += state._unit_expected[lo]
            present += state._unit_present[lo]
        return expected, present

    def _totals(self) -> tuple[int, int, int]:
        """(present, unexpected, guests) in the scope."""
        state, root = self.state, self.root
        if root is None:
            return state._present, state._unexpected, state._guests
        return (
            self._counts()[1],
            state._unexpected_at.get(root, 0),
            state._guests_at.get(root, 0),
        )

    def _unit_dict(self, index: int, entry: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = entry if entry is not None else self.state._unit_dict(index)
        if entry["parent"] is not None and any(lo == index for lo, _hi in self._ranges):
            entry = {**entry, "parent": None}  # the top of the view: its parent is outside
        return entry

    def _sites(self) -> list[_SiteLive]:
        """The view's sites (whatever `options.sites`), by id."""
        return sorted(
            (s for s in self.state._sites.values() if s.site is not None and self._covers_site(s)),
            key=_site_id,
        )

    def snapshot(self) -> dict[str, Any]:
        """LIVE restricted to the scope (and `curve` empty in a scope: see the module's
        docstring), with the sites and units the options ask for."""
        state = self.state
        if self._plain:
            return state.snapshot()
        expected, present = self._counts()
        _present, unexpected, guests = self._totals()
        curve = (
            [state._minute_dict(minute) for minute in sorted(state._curve)]
            if self.root is None
            else []
        )
        return {
            "session": state._session_id,
            "expected": expected,
            "present": present,
            "guests": guests,
            "sites": [site.as_dict() for site in self._sites()] if self.options.sites else [],
            "unexpected": unexpected,
            "units": [self._unit_dict(index) for index in self._unit_indexes()],
            "curve": curve,
        }

    def delta(self, changes: Changes | None) -> dict[str, Any] | None:
        """This view's delta for one flush's `changes`: None when nothing in it changed."""
        if self._plain:
            return self.state.delta(changes)
        sites: list[dict[str, Any]] = []
        units: list[dict[str, Any]] = []
        minutes: list[int] = []
        if changes is not None:
            if self.options.sites:
                sites = [
                    changes.site_entry(site)
                    for site in changes.changed_sites
                    if self._covers_site(site)
                ]
            units = self._changed_units(changes)
            if self.root is None:
                minutes = changes.minutes
        totals = self._totals()
        if not sites and not units and not minutes and totals == self._last:
            return None
        self._last = totals
        present, unexpected, guests = totals
        return {
            "present": present,
            "unexpected": unexpected,
            "guests": guests,
            "sites": sites,
            "units": units,
            "curve": [self.state._minute_dict(minute) for minute in minutes],
        }

    def sites_page(self, query: SiteQuery) -> tuple[list[dict[str, Any]], int]:
        """One page of the view's per-site table and how many sites match, from the live
        state (no database read): what a dashboard at many sites reads instead of LIVE's
        `sites`. A name matches when the folded query is part of its folded name."""
        state = self.state
        by_name = state._by_name
        if by_name is None:
            by_name = state._by_name = sorted(
                (s for s in state._sites.values() if s.site is not None),
                key=lambda s: (s.folded, s.id),
            )
        # one pass per filter asked for: the common page (no filter, by name) is a slice
        found = by_name
        if self.root is not None:
            mine = self._by_name
            if mine is None or mine[0] is not by_name:
                mine = self._by_name = (by_name, [s for s in by_name if self._covers_site(s)])
            found = mine[1]
        if query.kind is not None:
            kind = query.kind
            found = [site for site in found if site.site is not None and site.site.kind == kind]
        if query.silent is not None:
            silent = query.silent
            found = [site for site in found if (site.connections == 0) == silent]
        if query.q:
            q = query.q
            found = [site for site in found if q in site.folded]
        total, end = len(found), query.offset + query.limit
        key: Callable[[_SiteLive], Any] | None = None
        if query.order == "present":
            key = _most_present
        elif query.order == "last_event_at":
            key = _quietest
        if key is not None:
            # the first pages, the ones read, need only the smallest `end`, not a full sort
            if end * 8 < len(found):
                found = heapq.nsmallest(end, found, key=key)
            else:
                found = sorted(found, key=key)
        page = found[query.offset : end]
        return [site.as_dict() for site in page], total


def _site_id(entry: _SiteLive) -> int:
    return entry.id


def _most_present(entry: _SiteLive) -> tuple[int, str, int]:
    return -entry.present, entry.folded, entry.id


_NEVER = datetime.min.replace(tzinfo=UTC)


def _quietest(entry: _SiteLive) -> tuple[datetime, int]:
    """Never heard from first, then the longest silent."""
    return entry.last_event_at or _NEVER, entry.id
