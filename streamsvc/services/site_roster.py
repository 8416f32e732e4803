"""What a site's check-in page needs to start with: who is expected there, who is in already.

A coordinator's phone loads this once per connection (and after a void), not per scan. On the
national day 31,000 phones load it in the same half hour, for a session of 2,000,000 members:
each site's list is read for its own subtree only (`Store.expected_members_in`, through the
members' unit index) and kept `EXPECTED_MAX_AGE` seconds for the other phones of that unit;
who is in comes from the live state, for the listed members only; the unit tree is the one
as the access checks have it (`AccessService`, read again when a unit import moved it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamsvc.domain.models import Member, Site
from streamsvc.domain.units import subtree
from streamsvc.ports import Store
from streamsvc.services.access import AccessService
from streamsvc.services.live import LiveHub
from streamsvc.services.recent import Recent

__all__ = ["EXPECTED_MAX_AGE", "SiteRoster", "SiteRosterService"]

#: How long a session's audience, once read, serves the next phones (a roster import during a
#: session shows on the check-in pages within this time).
EXPECTED_MAX_AGE = 30.0


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


class SiteRosterService:
    def __init__(self, store: Store, hub: LiveHub, access: AccessService) -> None:
        self.store = store
        self.hub = hub
        self.access = access  # the unit tree, cached per roster version
        # (session, the site's unit): the sites of one unit share their list
        self._lists: Recent[tuple[int, str | None], list[Member]] = Recent(
            self._read_list, max_age=EXPECTED_MAX_AGE, max_keys=4096
        )

    async def roster(self, site: Site) -> SiteRoster:
        """The members expected at `site` and who is checked in, for its check-in page."""
        units = await self.access.units()
        members = await self._lists.get((site.session_id, site.unit))
        present, here, guests = await self.hub.site_presence(site, (m.code for m in members))
        return SiteRoster(
            site=site,
            members=members,
            unit_names={u: units[u].name for u in {m.unit for m in members} if u in units},
            present=present,
            here=here,
            guests=guests,
        )

    async def _read_list(self, key: tuple[int, str | None]) -> list[Member]:
        session_id, unit = key
        if unit is None:  # a site of the whole audience lists all of it
            return [m async for m in self.store.iter_expected_members(session_id)]
        units = await self.access.units()
        return await self.store.expected_members_in(session_id, subtree(units, [unit]))
