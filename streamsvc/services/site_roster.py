"""What a site's check-in page needs to start with: who is expected there, who is in already.

A coordinator's phone loads this once per connection (and after a void), not per scan. When a
thousand phones reconnect at once, each would otherwise read the session's whole audience and
every event: who is in comes from the live state instead, and the audience is read once per
session every `EXPECTED_MAX_AGE` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streamsvc.domain.models import Member, Site, Unit
from streamsvc.domain.units import subtree
from streamsvc.ports import Store
from streamsvc.services.live import LiveHub
from streamsvc.services.recent import Recent

__all__ = ["EXPECTED_MAX_AGE", "SiteRoster", "SiteRosterService", "expected_here"]

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


class SiteRosterService:
    def __init__(self, store: Store, hub: LiveHub) -> None:
        self.store = store
        self.hub = hub
        # a few sessions run at once; each audience may be large, so few are kept
        self._audiences: Recent[int, _Audience] = Recent(
            self._read_audience, max_age=EXPECTED_MAX_AGE, max_keys=16
        )

    async def roster(self, site: Site) -> SiteRoster:
        """The members expected at `site` and who is checked in, for its check-in page."""
        units, expected = await self._audiences.get(site.session_id)
        present, here, guests = await self.hub.site_presence(site)
        return SiteRoster(
            site=site,
            members=expected_here(site, units, expected),
            unit_names={code: u.name for code, u in units.items()},
            present=present,
            here=here,
            guests=guests,
        )

    async def _read_audience(self, session_id: int) -> _Audience:
        units = {u.code: u for u in await self.store.list_units()}
        expected = [m async for m in self.store.iter_expected_members(session_id)]
        return units, expected


_Audience = tuple[dict[str, Unit], list[Member]]
