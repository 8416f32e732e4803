"""Wiring `--demo` into the app: seed once, print where to look, run the coordinators."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from streamsvc.demo.seed import seed_demo
from streamsvc.demo.simulate import assign_members, run_coordinators
from streamsvc.web import keys

__all__ = ["demo_ctx"]


async def demo_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings_key]
    store = app[keys.store_key]
    print(
        "streamsvc --demo: preparing the demo province (first start takes a few seconds)…",
        file=sys.stderr,
        flush=True,
    )
    seeded = await seed_demo(store)
    if seeded is None:
        yield
        return
    session_id, sites = seeded
    session = await store.get_session(session_id)
    assert session is not None
    units = {u.code: u for u in await store.list_units()}
    members = [m async for m in store.iter_expected_members(session_id)]
    assigned = assign_members(sites, members, units, seed=session_id)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = settings.public_url or f"http://{host}:{settings.port}"
    token = settings.admin_token or app.get(keys.new_admin_token_key)
    fragment = f"#token={token}" if token else ""
    lines = [
        "",
        f"  Demo session {session_id}: {session.title}",
        f"  {len(members):,} members expected, {len(sites)} sites; starts at "
        f"{session.starts_at:%H:%M} UTC",
        f"  Dashboard:      {base}/sessions/{session_id}{fragment}",
        f"  Sessions:       {base}/{fragment}",
        f"  Check-in page:  {base}/checkin#token={sites[0].token}  ({sites[0].site.name})",
        f"  Admin token:    {token or '(printed at the first start; pass --admin-token)'}",
        "  Simulated coordinators are checking members in; the counts move.",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    task = asyncio.create_task(
        run_coordinators(base.replace("http", "ws", 1), sites, assigned, session.starts_at)
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
