"""`--demo`: fill an empty database with the demo province, one session starting soon and its
sites, so that a newcomer has something to look at.

Site tokens are normally shown once and kept only as hashes. The demo keeps its own sites'
tokens in the settings table as well (`demo_site_tokens`), so that the simulated coordinators
can reconnect after a restart; that is the only place the service ever keeps a token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from streamsvc.demo.province import build_province, demo_session_title, demo_sites
from streamsvc.domain.models import Site
from streamsvc.domain.policy import Caller
from streamsvc.domain.timefmt import format_ts
from streamsvc.ports import Store
from streamsvc.services.roster import RosterService
from streamsvc.services.sessions import SessionService

__all__ = ["DemoSite", "seed_demo"]

logger = logging.getLogger(__name__)

TOKENS_KEY = "demo_site_tokens"
STARTS_IN = timedelta(minutes=20)
LASTS = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class DemoSite:
    site: Site
    token: str


async def seed_demo(store: Store, *, members: int = 37_000) -> tuple[int, list[DemoSite]] | None:
    """(session id, sites with tokens) of the demo session; made on first use.

    Returns None when the database already holds a roster that is not the demo's."""
    stored = await store.get_setting(TOKENS_KEY)
    if stored:
        data = orjson.loads(stored)
        session_id = int(data["session"])
        sites = {s.id: s for s in await store.list_sites(session_id)}
        return session_id, [
            DemoSite(sites[int(sid)], token)
            for sid, token in data["tokens"].items()
            if int(sid) in sites
        ]
    if await store.list_units():
        logger.warning("--demo: the database already has a roster; leaving it as it is")
        return None

    units, people = build_province(members=members)
    roster = RosterService(store)
    operator = Caller.operator("demo")
    await roster.import_units(
        operator, [{"code": u.code, "name": u.name, "parent": u.parent} for u in units]
    )
    await roster.import_members(
        operator, [{"code": m.code, "full_name": m.full_name, "unit": m.unit} for m in people]
    )
    sessions = SessionService(store)
    starts = datetime.now(UTC).replace(second=0, microsecond=0) + STARTS_IN
    session = await sessions.create_session(
        operator,
        {
            "title": demo_session_title(),
            "starts_at": format_ts(starts),
            "ends_at": format_ts(starts + LASTS),
            "audience": [units[0].code],
            "late_after_minutes": 15,
        },
    )
    made: list[DemoSite] = []
    for body in demo_sites(units):
        site, token = await sessions.create_site(operator, session.id, body)
        made.append(DemoSite(site, token))
    await store.set_setting(
        TOKENS_KEY,
        orjson.dumps(
            {"session": session.id, "tokens": {str(d.site.id): d.token for d in made}}
        ).decode(),
    )
    return session.id, made
