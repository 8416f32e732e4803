"""Who is connected at each site, counted across every instance of the service.

A coordinator's websocket lands on one instance; the organizers' pages may watch on another.
Each instance counts its own connections per site and tells the others: a change as it
happens, and all of its counts in a heartbeat, which replaces what was heard from it before
(so a lost change message heals itself). An instance not heard from for `CONN_EXPIRY`
seconds is taken to have crashed, and its sites drop to "not connected".

Pure: no clock, no I/O. The caller passes `now` (any monotonic seconds) and applies the site
ids each call returns to the live state.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CONN_EXPIRY", "ConnectionRegistry", "SiteCount"]

#: Seconds after an instance's last message when its connections no longer count (three
#: heartbeats missed).
CONN_EXPIRY = 15.0

#: (site id, session id, connections): one site's count as instances tell it to each other.
SiteCount = tuple[int, int, int]


class ConnectionRegistry:
    """This instance's connection counts per site, the other instances' with when each was
    last heard, and the session of every site seen, for the totals shown as `connected`."""

    __slots__ = ("_local", "_remote", "_session_of")

    def __init__(self) -> None:
        self._local: dict[int, int] = {}
        # origin instance -> (last heard, {site: count}); sites with no connection are absent
        self._remote: dict[str, tuple[float, dict[int, int]]] = {}
        self._session_of: dict[int, int] = {}

    def connect(self, site_id: int, session_id: int, change: int) -> int:
        """Count a coordinator connecting (+1) or going away (-1) here; returns this
        instance's count for the site afterwards, never below zero."""
        count = max(self._local.get(site_id, 0) + change, 0)
        if count:
            self._local[site_id] = count
        else:
            self._local.pop(site_id, None)
        self._session_of[site_id] = session_id
        return count

    def place(self, site_id: int, session_id: int) -> None:
        """Remember which session a site belongs to (for counts about it heard later)."""
        self._session_of[site_id] = session_id

    def session_of(self, site_id: int) -> int | None:
        return self._session_of.get(site_id)

    def local_counts(self) -> list[SiteCount]:
        """Every site with a connection here, for the heartbeat."""
        session_of = self._session_of
        return [(site, session_of.get(site, 0), n) for site, n in self._local.items()]

    def heard(
        self, origin: str, counts: Iterable[SiteCount], *, full: bool, now: float
    ) -> set[int]:
        """Counts another instance sent: changes, or with `full` all of its counts (a
        heartbeat: sites it no longer names have no connection there). Returns the sites
        whose total may have changed."""
        _heard, known = self._remote.get(origin, (0.0, {}))
        changed: set[int] = set()
        if full:
            changed.update(known)
            known = {}
        for site_id, session_id, count in counts:
            self._session_of.setdefault(site_id, session_id)
            if count:
                known[site_id] = count
            else:
                known.pop(site_id, None)
            changed.add(site_id)
        self._remote[origin] = (now, known)
        return changed

    def expire(self, now: float) -> set[int]:
        """Forget instances not heard from for `CONN_EXPIRY` seconds; returns their sites."""
        changed: set[int] = set()
        for origin, (heard, known) in list(self._remote.items()):
            if now - heard > CONN_EXPIRY:
                del self._remote[origin]
                changed.update(known)
        return changed

    def total(self, site_id: int) -> int:
        """Connections at the site on every instance still heard from."""
        total = self._local.get(site_id, 0)
        for _heard, known in self._remote.values():
            total += known.get(site_id, 0)
        return total
