"""The demo's users, one per level of the cascade, so that a newcomer signs in as each and
sees what each level sees: the province admin the whole tree, the district organizer the
article's district, the cell secretary one cell (whose excuses they record), a viewer another
district, read only.

Their passwords are known on purpose and printed in the banner; this is a demo. A user that
already exists (a restart, or a password changed since) is left as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streamsvc.domain.models import Site, Unit
from streamsvc.domain.policy import Caller
from streamsvc.errors import Conflict, Unauthorized
from streamsvc.ports import Store
from streamsvc.services.accounts import AccountService

__all__ = ["DEMO_USERS", "DemoUser", "ensure_demo_users"]

logger = logging.getLogger(__name__)

#: The article's district (DOMAIN.md): its organizer and one of its cells' secretary.
DISTRICT = "BK.BT"
#: Another district, seen by a viewer: the same session, other counts.
OTHER_DISTRICT = "BK.CD"
#: The cell secretary's unit stands for "a cell of DISTRICT with a viewing point of its own".
CELL = "cell"


@dataclass(frozen=True, slots=True)
class DemoUser:
    login: str
    password: str
    role: str
    unit: str
    full_name: str
    does: str


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(
        "province-admin", "demo-province-admin", "admin", "BK", "Hoàng Thị Thanh",
        "the whole province, its users and audit log",
    ),
    DemoUser(
        "district-organizer", "demo-district-organizer", "organizer", DISTRICT, "Nông Văn Hải",
        "the district's sessions, viewing points and excuses",
    ),
    DemoUser(
        "cell-secretary", "demo-cell-secretary", "organizer", CELL, "Lương Thị Mai",
        "the cell's excuses; sees only the cell",
    ),
    DemoUser(
        "district-viewer", "demo-district-viewer", "viewer", OTHER_DISTRICT, "Ma Văn Đức",
        "the district's counts and attendance, read only",
    ),
)  # fmt: skip


def _cell(units: Mapping[str, Unit], sites: Iterable[Site]) -> str | None:
    """A cell of the district, the first one with a viewing point of its own (so its secretary
    sees a site on the dashboard), else the district's first cell."""
    for site in sites:
        unit = units.get(site.unit) if site.unit is not None else None
        if unit is not None and unit.parent == DISTRICT:
            return unit.code
    cells = sorted(code for code, u in units.items() if u.parent == DISTRICT)
    return cells[0] if cells else None


async def _no_site(token: str) -> Site:
    raise Unauthorized("the demo takes no tokens")


async def ensure_demo_users(store: Store, sites: Iterable[Site]) -> list[DemoUser]:
    """Create the demo users that do not exist yet; returns every demo user the roster has a
    unit for, with the unit resolved, for the banner."""
    units = {u.code: u for u in await store.list_units()}
    cell = _cell(units, sites)
    accounts = AccountService(store, "", _no_site)
    operator = Caller.operator("demo")
    ready: list[DemoUser] = []
    for demo in DEMO_USERS:
        unit = cell if demo.unit == CELL else demo.unit
        if unit is None or unit not in units:
            continue
        user = DemoUser(demo.login, demo.password, demo.role, unit, demo.full_name, demo.does)
        ready.append(user)
        if await store.get_user(user.login) is not None:
            continue
        body = {
            "login": user.login,
            "password": user.password,
            "role": user.role,
            "unit": user.unit,
            "full_name": user.full_name,
        }
        try:
            await accounts.create_user(operator, body, set(units))
        except Conflict:  # another instance started with --demo made it meanwhile
            logger.info("demo user %s was made by another instance", user.login)
    return ready
