"""Simulated coordinators for `--demo`: each demo site checks its members in over the real
`/ws/checkin` websocket, at the pace of a real morning, so the live counts move.

Members arrive over the 35 minutes around the session's start (most in the last quarter hour
before it), about 92% of them; a few scans are typos, a few are scanned twice; broadcast
points report their guest headcount now and then; one site stays silent, as one always does.
Event ids are derived from (site, member), so after a restart the resent scans are duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from streamsvc_clients.protocol import Backoff, CheckinLink, Unauthorized, encode_frame, ws_url

from streamsvc.demo.seed import DemoSite
from streamsvc.domain.models import Member, Unit
from streamsvc.domain.timefmt import format_ts

__all__ = ["assign_members", "run_coordinators"]

logger = logging.getLogger(__name__)

ATTENDANCE = 0.92
TYPO_RATE = 0.01
DOUBLE_SCAN_RATE = 0.02
Event = dict[str, Any]  # one check-in websocket event, as the contract spells it
BATCH = 200  # events per frame at most: a burst after a reconnect goes in a few frames
NAMESPACE = uuid.UUID("6a0f3c1e-5f4b-4d7e-9a53-1c2b3d4e5f60")


def _ancestors(units: Mapping[str, Unit], code: str) -> list[str]:
    chain, seen = [], set()
    while code in units and code not in seen:
        seen.add(code)
        chain.append(code)
        parent = units[code].parent
        if parent is None:
            break
        code = parent
    return chain


def assign_members(
    sites: Sequence[DemoSite], members: Sequence[Member], units: Mapping[str, Unit], seed: int
) -> dict[int, list[str]]:
    """Site id -> the member codes who come to it: each member to the nearest site covering
    their unit (a tie picked at random), a few to the province hall."""
    rng = random.Random(seed)
    by_unit: dict[str, list[DemoSite]] = {}
    open_sites = []
    for demo in sites:
        if demo.site.unit is None:
            open_sites.append(demo)
        else:
            by_unit.setdefault(demo.site.unit, []).append(demo)
    out: dict[int, list[str]] = {d.site.id: [] for d in sites}
    for member in members:
        choice = None
        if not open_sites or rng.random() > 0.03:
            for code in _ancestors(units, member.unit):
                if code in by_unit:
                    choice = rng.choice(by_unit[code])
                    break
        if choice is None and open_sites:
            choice = rng.choice(open_sites)
        if choice is not None:
            out[choice.site.id].append(member.code)
    return out


async def run_coordinators(
    url: str,
    sites: Sequence[DemoSite],
    assigned: Mapping[int, list[str]],
    starts_at: datetime,
    *,
    seed: int = 2017,
    speed: float = 1.0,
) -> None:
    """Run one simulated coordinator per site until every arrival is sent (or cancelled);
    `url` is the service's http address."""
    rng = random.Random(seed)
    silent = next((d.site.id for d in reversed(sites) if d.site.kind == "broadcast"), None)
    tasks = []
    for demo in sites:
        if demo.site.id == silent:
            continue
        plan = _plan(rng, demo, assigned.get(demo.site.id, []), starts_at, speed)
        tasks.append(asyncio.create_task(_coordinator(url, demo, plan, rng.random())))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


def _plan(
    rng: random.Random, demo: DemoSite, codes: list[str], starts_at: datetime, speed: float
) -> list[tuple[datetime, Event]]:
    """(when, event) for one site, in time order."""
    begin = datetime.now(UTC)
    # most arrive in the quarter hour before the start; a tail comes late
    window = max((starts_at - begin).total_seconds(), 60.0) / speed
    plan: list[tuple[datetime, Event]] = []
    site_id = demo.site.id
    for code in codes:
        if rng.random() > ATTENDANCE:
            continue
        at = begin + timedelta(seconds=rng.triangular(0, window * 1.15, window * 0.6))
        scan = code
        if rng.random() < TYPO_RATE:
            scan = code[:-1] + str((int(code[-1]) + 1) % 10)  # a mistyped card number
        plan.append((at, _checkin(site_id, scan, "a")))
        if rng.random() < DOUBLE_SCAN_RATE:
            plan.append(
                (at + timedelta(seconds=rng.uniform(30, 300)), _checkin(site_id, code, "b"))
            )
    if demo.site.kind == "broadcast":
        guests = 0
        for minute in range(0, int(window * 1.2 / 60), 4):
            guests += rng.randrange(0, 6)
            at = begin + timedelta(minutes=minute)
            plan.append((at, {"type": "guests", "id": _id(site_id, f"g{minute}"), "count": guests}))
    plan.sort(key=lambda p: p[0])
    return plan


def _id(site_id: int, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{site_id}:{key}"))


def _checkin(site_id: int, code: str, tag: str) -> Event:
    return {"type": "checkin", "id": _id(site_id, f"{code}:{tag}"), "member": code}


class _DemoLink(CheckinLink):
    def lost(self, established: bool, exc: BaseException) -> None:
        logger.debug("demo site %s: %s; retrying", self.device, exc)


async def _coordinator(
    url: str, demo: DemoSite, plan: list[tuple[datetime, Event]], j: float
) -> None:
    """Send the plan's events as they fall due, in batches of up to 200; the link reconnects
    and resends on drops, and ends once everything is acknowledged."""
    link = _DemoLink(
        ws_url(url), demo.token, device="demo", backoff=Backoff(0.5 + j, 10.0), open_timeout=5
    )

    async def feed() -> None:
        pending = deque(plan)
        while pending:
            now = datetime.now(UTC)
            due: list[Event] = []
            while pending and pending[0][0] <= now and len(due) < BATCH:
                due.append(pending.popleft()[1])
            if not due:
                await asyncio.sleep(min((pending[0][0] - now).total_seconds(), 5.0))
                continue
            stamp = format_ts(now)
            link.put(encode_frame([{**event, "ts": stamp} for event in due]))
        link.finish()

    feeder = asyncio.create_task(feed())
    try:
        await link.run()
    except Unauthorized as exc:
        logger.warning("demo site %s refused: %s", demo.site.name, exc)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
