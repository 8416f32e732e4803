"""`--demo` after the app is up: seed once, print where to look, run the coordinators.

It takes plain arguments (the store, the URL the service is reached at, the admin token) so
that the demo does not depend on the web layer; `streamsvc.web.demo_ctx` wires it into the app.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import Any, TextIO

from streamsvc.demo.seed import seed_demo
from streamsvc.demo.simulate import assign_members, run_coordinators
from streamsvc.demo.users import DemoUser, ensure_demo_users
from streamsvc.domain.models import Unit
from streamsvc.ports import Store

__all__ = ["prepare_demo"]


async def prepare_demo(
    store: Store, base_url: str, admin_token: str | None, out: TextIO = sys.stderr
) -> Coroutine[Any, Any, None] | None:
    """Seed the demo province and its users (first start only) and print its links and
    sign-ins; returns the simulated coordinators to run until cancelled, or None when the
    database holds another roster."""
    print(
        "streamsvc --demo: preparing the demo province (first start takes a few seconds)…",
        file=out,
        flush=True,
    )
    seeded = await seed_demo(store)
    if seeded is None:
        return None
    session_id, sites = seeded
    session = await store.get_session(session_id)
    assert session is not None
    units = {u.code: u for u in await store.list_units()}
    users = await ensure_demo_users(store, [d.site for d in sites])
    members = [m async for m in store.iter_expected_members(session_id)]
    assigned = assign_members(sites, members, units, seed=session_id)
    fragment = f"#token={admin_token}" if admin_token else ""
    lines = [
        "",
        f"  Demo session {session_id}: {session.title}",
        f"  {len(members):,} members expected, {len(sites)} sites; starts at "
        f"{session.starts_at:%H:%M} UTC",
        f"  Dashboard:      {base_url}/sessions/{session_id}{fragment}",
        f"  Sessions:       {base_url}/{fragment}",
        f"  Check-in page:  {base_url}/checkin#token={sites[0].token}  ({sites[0].site.name})",
        f"  Admin token:    {admin_token or '(printed at the first start; pass --admin-token)'}",
        *_sign_ins(base_url, users, units),
        "  Simulated coordinators are checking members in; the counts move.",
        "",
    ]
    print("\n".join(lines), file=out, flush=True)
    return run_coordinators(base_url, sites, assigned, session.starts_at)


def _sign_ins(base_url: str, users: list[DemoUser], units: dict[str, Unit]) -> list[str]:
    """Two lines per demo user: login and password, then role, unit and what that level does."""
    if not users:
        return []
    lines = [f"  Sign in at {base_url}/ as each level of the cascade (login / password):"]
    for u in users:
        lines.append(f"    {u.login} / {u.password}")
        lines.append(f"        {u.role} of {units[u.unit].name} ({u.unit}): {u.does}")
    return lines
