"""Recording check-ins: group commit, so throughput grows with load.

Every connection hands its decoded events to one `GroupCommitter`. While a commit is
running, new events wait; as soon as it finishes, everything that arrived meanwhile is
decided and written in the next single transaction. An ack is sent only when the
transaction holding its events has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from streamsvc.domain.checkin import MAX_BATCH, Incoming, Outcome, decide_batch, parse_event
from streamsvc.domain.models import Event, Site
from streamsvc.errors import InvalidInput, StoreUnavailable, Unauthorized
from streamsvc.ports import CheckinItem, Store
from streamsvc.services.metrics import CheckinStats
from streamsvc.services.revocations import site_ids
from streamsvc.services.tokens import hash_token

__all__ = ["CheckinService", "GroupCommitter"]

logger = logging.getLogger(__name__)

#: Seconds a site token stays cached; bounds how long a missed revocation keeps an old token.
SITE_TTL = 5.0

OnCommitted = Callable[[Sequence[Event]], Awaitable[None] | None]


class GroupCommitter:
    """Batches events from all connections into as few transactions as the disk allows."""

    def __init__(
        self,
        store: Store,
        *,
        writers: int = 1,
        max_events: int = 5000,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self.store = store
        self.writers = writers
        self.max_events = max_events
        self.on_committed = on_committed
        self._pending: deque[tuple[list[CheckinItem], asyncio.Future[list[Outcome]]]] = deque()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.commits = 0
        self.events = 0
        self.stats = CheckinStats()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"group-commit-{i}") for i in range(self.writers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, future in self._pending:
            if not future.done():
                future.set_exception(ConnectionAbortedError("server shutting down"))
        self._pending.clear()

    def enqueue(self, items: list[CheckinItem]) -> asyncio.Future[list[Outcome]]:
        """Queue events for the next commit; the future resolves once they are durably stored.

        A plain future rather than a coroutine, so that a websocket can queue a frame without
        a task of its own per frame (that task cost as much CPU as deciding the events).
        """
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._pending.append((items, future))
        self._wakeup.set()
        return future

    async def submit(self, items: list[CheckinItem]) -> list[Outcome]:
        """Queue events for the next commit and wait until they are durably stored."""
        return await self.enqueue(items)

    def backlog(self) -> int:
        """Frames (or HTTP requests) waiting for the next commit, for `/metrics`."""
        return len(self._pending)

    def _take(self) -> list[tuple[list[CheckinItem], asyncio.Future[list[Outcome]]]]:
        taken, count = [], 0
        while self._pending and (count == 0 or count + len(self._pending[0][0]) <= self.max_events):
            entry = self._pending.popleft()
            taken.append(entry)
            count += len(entry[0])
        if not self._pending:
            self._wakeup.clear()
        return taken

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            group = self._take()
            if not group:
                continue
            items = [item for entry, _ in group for item in entry]
            started = time.perf_counter()
            try:
                outcomes, stored = await self.store.commit_events(
                    items, decide_batch, datetime.now(UTC)
                )
            except asyncio.CancelledError:
                for _, future in group:
                    if not future.done():
                        future.set_exception(ConnectionAbortedError("server shutting down"))
                raise
            except Exception as exc:
                if isinstance(exc, StoreUnavailable):
                    # expected while the database restarts: one line, not a traceback per
                    # group (hundreds a second under load)
                    logger.warning("group commit of %d events failed: %s", len(items), exc)
                else:
                    logger.exception("group commit of %d events failed", len(items))
                self.stats.commit_failures += 1
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.commits += 1
            self.events += len(items)
            self.stats.count_group(outcomes, len(stored), time.perf_counter() - started)
            start = 0
            for entry, future in group:
                end = start + len(entry)
                if not future.done():
                    future.set_result(outcomes[start:end])
                start = end
            if stored and self.on_committed is not None:
                try:
                    result = self.on_committed(stored)
                    if result is not None:
                        await result
                except Exception:
                    logger.exception("publishing %d committed events failed", len(stored))


class CheckinService:
    """Site authentication and the check-in path shared by the websocket and HTTP."""

    def __init__(
        self,
        store: Store,
        committer: GroupCommitter,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.committer = committer
        self.stats = committer.stats
        self.clock = clock
        # token hash -> (site, when the entry expires): a revocation that never arrives (Redis
        # away) keeps an old token alive here for SITE_TTL seconds at most
        self._sites: dict[str, tuple[Site, float]] = {}
        self._forgets = 0

    async def site_for_token(self, token: Any) -> Site:
        if not isinstance(token, str) or not token or len(token) > 200:
            raise Unauthorized("a site token is required")
        key = hash_token(token)
        entry = self._sites.get(key)
        if entry is not None and entry[1] > self.clock():
            return entry[0]
        for _ in range(3):
            forgets = self._forgets
            site = await self.store.site_by_token_hash(key)
            if forgets == self._forgets:
                break
            # a site was revoked while the store answered: the answer may predate it
        if site is None:
            self._sites.pop(key, None)
            raise Unauthorized("unknown site token")
        if forgets == self._forgets:
            if len(self._sites) > 100_000:
                self._sites.clear()
            self._sites[key] = (site, self.clock() + SITE_TTL)
        return site

    async def token_holds(self, token: str, site_id: int) -> bool:
        """Whether `token` is still the site's, read from the store: a revocation may have
        been missed (`Revocations.recheck`)."""
        site = await self.store.site_by_token_hash(hash_token(token))
        return site is not None and site.id == site_id

    def forget_site(self, site_id: int) -> None:
        """Drop the cached tokens of a site whose token was reset (here or on another
        instance), so the old token is looked up, and refused, at once."""
        self._forgets += 1
        stale = [key for key, (site, _) in self._sites.items() if site.id == site_id]
        for key in stale:
            del self._sites[key]

    def forget_revoked(self, keys: Sequence[str]) -> None:
        """The `Revocations.on_revoked` hook: forget every site among the revoked keys."""
        for site_id in site_ids(keys):
            self.forget_site(site_id)

    async def record(self, site: Site, raw_events: Sequence[Any]) -> list[dict[str, Any]]:
        """Decide and store events from one site; one result per event, in order."""
        return await self.start_record(site, raw_events)

    def start_record(
        self, site: Site, raw_events: Sequence[Any]
    ) -> asyncio.Future[list[dict[str, Any]]]:
        """Queue events from one site; the future gives one result per event, in order,
        once the accepted ones are durably stored."""
        if len(raw_events) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} events in one batch")
        parsed: list[Incoming | Outcome] = [parse_event(raw) for raw in raw_events]
        items = [(site.session_id, site, p) for p in parsed if isinstance(p, Incoming)]
        all_parsed = len(items) == len(parsed)
        if not all_parsed:
            self.stats.count_rejected("invalid", len(parsed) - len(items))
        results: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        if not items:
            results.set_result([_json(p) for p in parsed])
            return results

        def done(stored: asyncio.Future[list[Outcome]]) -> None:
            if results.cancelled():
                return
            if stored.cancelled():
                results.cancel()
            elif (exc := stored.exception()) is not None:
                results.set_exception(exc)
            elif all_parsed:  # one outcome per event, in order: the common case
                results.set_result([outcome.to_json() for outcome in stored.result()])
            else:
                it = iter(stored.result())
                results.set_result(
                    [(next(it) if isinstance(p, Incoming) else p).to_json() for p in parsed]
                )

        self.committer.enqueue(items).add_done_callback(done)
        return results


def _json(outcome: Incoming | Outcome) -> dict[str, Any]:
    assert isinstance(outcome, Outcome)
    return outcome.to_json()
