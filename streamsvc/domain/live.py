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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from streamsvc.domain.models import Event, Session, Site, Unit
from streamsvc.domain.timefmt import format_ts

__all__ = ["Changes", "LiveState", "LiveView"]

_MINUTE = timedelta(minutes=1)


class _SiteLive:
    """The counters of one site. `site` stays None while an event names a site this state
    was not told about yet (registered on another instance); it is hidden until `add_site`."""

    __slots__ = (
        "connections",
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
_Checkin = tuple[str, _SiteLive, int]


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
        # in `units`, and counted apart for the scoped views (`_loose_*`).
        self._chains: dict[str, tuple[int, ...]] = {}
        self._loose_units: dict[str, str] = {}
        self._loose_expected_at: dict[str, int] = {}
        self._loose_present_at: dict[str, int] = {}
        unit_expected = self._unit_expected
        for member, unit in expected_units.items():
            chain = unit_chains.get(unit, ())
            self._chains[member] = chain
            for index in chain:
                unit_expected[index] += 1
            if not chain:
                self._loose_units[member] = unit
                self._add_up(self._loose_expected_at, unit, 1)

        # unexpected members: their units once known (`place_members`), those counted but not
        # yet placed, those not yet asked about, and the count on each unit's ancestors
        self._member_units: dict[str, str] = {}
        self._unplaced: set[str] = set()
        self._to_place: set[str] = set()
        self._unexpected_at: dict[str, int] = {}
        # guest headcounts on the ancestors of each site's unit
        self._guests_at: dict[str, int] = {}

        self._sites: dict[int, _SiteLive] = {}
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
            events[event_id] = (member, site, minute)
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
                self._count_out(*checkin)
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

    def site_presence(self, site_id: int) -> tuple[set[str], set[str], int | None]:
        """(members checked in at the session, those checked in at this site, the site's guest
        headcount in force or None): what a site's check-in page starts from."""
        site = self._sites.get(site_id)
        if site is None:
            return set(self._member_checkins), set(), None
        guests = site.guests if site.guests_key is not None else None
        return set(self._member_checkins), set(site.members), guests

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
        return Changes(
            totals,
            [(site, site.as_dict()) for site in sites],
            [(index, self._unit_dict(index)) for index in units],
            minutes,
        )

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

    def view(self, root: str | None) -> LiveView:
        """LIVE restricted to the subtree of `root` (None: the whole tree)."""
        return LiveView(self, root)


class Changes:
    """What changed in one flush: the changed sites and units with their dicts made once."""

    __slots__ = ("minutes", "sites", "totals", "units")

    def __init__(
        self,
        totals: bool,
        sites: list[tuple[_SiteLive, dict[str, Any]]],
        units: list[tuple[int, dict[str, Any]]],
        minutes: list[int],
    ) -> None:
        self.totals = totals
        self.sites = sites
        self.units = units
        self.minutes = minutes


class LiveView:
    """LIVE of one session restricted to a subtree: made once per (session, scope) that has
    monitors, it reads the state's counters (O(audience roots) per snapshot or delta) and
    never adds work to a check-in. `root` None is the whole session, exactly as the state."""

    def __init__(self, state: LiveState, root: str | None) -> None:
        self.state = state
        self.root = root
        self._site_in: dict[str | None, bool] = {}
        self._ranges: list[tuple[int, int]] = []
        self._last: tuple[int, int, int] | None = None
        if root is None:
            return
        index = state._unit_index.get(root)
        if index is not None:
            self._ranges = [(index, state._unit_end[index])]
        else:
            self._ranges = [
                (r, state._unit_end[r])
                for r in state._roots
                if state._within(state._unit_codes[r], root)
            ]
        self._last = self._totals()

    def _covers_site(self, site: _SiteLive) -> bool:
        info = site.site
        unit = info.unit if info is not None else None
        found = self._site_in.get(unit)
        if found is None:
            assert self.root is not None
            found = self._site_in[unit] = unit is not None and self.state._within(unit, self.root)
        return found

    def _covers_unit(self, index: int) -> bool:
        return any(lo <= index < hi for lo, hi in self._ranges)

    def _counts(self) -> tuple[int, int]:
        """(expected, present) in the scope."""
        state, root = self.state, self.root
        assert root is not None
        expected = state._loose_expected_at.get(root, 0)
        present = state._loose_present_at.get(root, 0)
        for lo, _hi in self._ranges:
            expected += state._unit_expected[lo]
            present += state._unit_present[lo]
        return expected, present

    def _totals(self) -> tuple[int, int, int]:
        """(present, unexpected, guests) in the scope."""
        state, root = self.state, self.root
        assert root is not None
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

    def snapshot(self) -> dict[str, Any]:
        """LIVE restricted to the scope (and `curve` empty: see the module's docstring)."""
        state = self.state
        if self.root is None:
            return state.snapshot()
        sites = sorted(
            (s for s in state._sites.values() if s.site is not None and self._covers_site(s)),
            key=_site_id,
        )
        expected, present = self._counts()
        _present, unexpected, guests = self._totals()
        return {
            "session": state._session_id,
            "expected": expected,
            "present": present,
            "guests": guests,
            "sites": [site.as_dict() for site in sites],
            "unexpected": unexpected,
            "units": [self._unit_dict(i) for lo, hi in self._ranges for i in range(lo, hi)],
            "curve": [],
        }

    def delta(self, changes: Changes | None) -> dict[str, Any] | None:
        """This scope's delta for one flush's `changes`: None when nothing in it changed."""
        if self.root is None:
            return self.state.delta(changes)
        if changes is None:
            sites: list[dict[str, Any]] = []
            units: list[dict[str, Any]] = []
        else:
            sites = [entry for site, entry in changes.sites if self._covers_site(site)]
            units = [
                self._unit_dict(index, entry)
                for index, entry in changes.units
                if self._covers_unit(index)
            ]
        totals = self._totals()
        if not sites and not units and totals == self._last:
            return None
        self._last = totals
        present, unexpected, guests = totals
        return {
            "present": present,
            "unexpected": unexpected,
            "guests": guests,
            "sites": sites,
            "units": units,
            "curve": [],
        }


def _site_id(entry: _SiteLive) -> int:
    return entry.id
