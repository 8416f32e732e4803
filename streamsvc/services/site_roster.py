"""What a site's check-in page needs to start with: who is expected there, who is in already.

A coordinator's phone loads this once per connection (and after a void), not per scan, so it
is read from the store's streams rather than kept live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streamsvc.domain.models import Event, Member, Site, Unit
from streamsvc.domain.units import subtree
from streamsvc.ports import Store

__all__ = ["SiteRoster", "SiteRosterService", "expected_here", "presence_of"]


@dataclass(frozen=True, slots=True)
class SiteRoster:
    site: Site
    members: list[Member]
    unit_names: Mapping[str, str]
    present: set[str]
    here: set[str]
    guests: int | None

    def to_json(self) -> dict[str, Any]:
        names = self.unit_names
        return {
            "session": self.site.session_id,
            "site": self.site.id,
            "members": [
                {
                    "code": m.code,
                    "full_name": m.full_name,
                    "unit": m.unit,
                    "unit_name": names.get(m.unit, m.unit),
                }
                for m in self.members
            ],
            "present": sorted(self.present),
            "here": sorted(self.here),
            "guests": self.guests,
        }


def expected_here(
    site: Site, units: Mapping[str, Unit], expected: Iterable[Member]
) -> list[Member]:
    """The session's expected members who belong to the site's unit subtree, or all of them
    when the site has no unit. A site's unit narrows the audience; it never widens it, so a
    make-up session's site lists only the excused members of its unit."""
    if site.unit is None:
        return list(expected)
    codes = set(subtree(units, [site.unit]))
    return [m for m in expected if m.unit in codes]


def presence_of(site_id: int, events: Iterable[Event]) -> tuple[set[str], set[str], int | None]:
    """(members checked in at the session, those checked in at this site, the site's guest
    headcount in force or None), counting only check-ins that were not voided."""
    present: set[str] = set()
    here: set[str] = set()
    guests_key: tuple[datetime, str] | None = None
    guests: int | None = None
    for event in events:
        if event.type == "checkin" and not event.voided and event.member:
            present.add(event.member)
            if event.site_id == site_id:
                here.add(event.member)
        elif event.type == "guests" and event.site_id == site_id and event.ts is not None:
            # the latest ts wins; the id breaks ties the same way the live counts do
            key = (event.ts, event.id)
            if guests_key is None or key > guests_key:
                guests_key, guests = key, event.count
    return present, here, guests


class SiteRosterService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def roster(self, site: Site) -> SiteRoster:
        """The members expected at `site` and who is checked in, for its check-in page."""
        units = {u.code: u for u in await self.store.list_units()}
        expected = [m async for m in self.store.iter_expected_members(site.session_id)]
        events = [e async for e in self.store.iter_events(site.session_id)]
        present, here, guests = presence_of(site.id, events)
        return SiteRoster(
            site=site,
            members=expected_here(site, units, expected),
            unit_names={code: u.name for code, u in units.items()},
            present=present,
            here=here,
            guests=guests,
        )
