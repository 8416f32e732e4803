"""Recording study evidence: reflections, quiz scores and self-study confirmations, all or
nothing, each member inside the caller's scope."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from streamsvc.domain.evidence import (
    MAX_ROWS,
    EvidenceRow,
    check_members,
    merge_evidence,
    read_evidence,
)
from streamsvc.domain.policy import Caller, rows_outside
from streamsvc.errors import Forbidden, ImportRejected
from streamsvc.ports import Store
from streamsvc.services.access import AccessService

__all__ = ["EvidenceService"]

T = TypeVar("T")
#: Uploads longer than this are read and merged in a thread: 100,000 rows take about a
#: second of pure Python, which on the loop would hold up every check-in's ack meanwhile.
OFF_LOOP_ROWS = 2_000


async def _pure(rows: int, work: Callable[[], T]) -> T:
    """`work()` on the loop for a small upload, in a thread for a large one."""
    if rows <= OFF_LOOP_ROWS:
        return work()
    return await asyncio.to_thread(work)


class EvidenceService:
    def __init__(self, store: Store, access: AccessService | None = None) -> None:
        self.store = store
        self.access = access or AccessService(store)
        # one upload at a time per session between reading what is stored and writing the
        # merge, so a tick on the secretary's page during a long quiz import is not
        # overwritten by the import's older copy of the row (on this instance; see record)
        self._merging: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def record(
        self, caller: Caller, session_id: int, rows: Sequence[Any], now: datetime | None = None
    ) -> dict[str, int]:
        """Upsert the members' evidence at a session; a field a row leaves out keeps what is
        stored. Every bad row is listed (400), then every row outside the caller's scope
        (403), and either way nothing is applied.

        `rows` are JSON objects, or CSV rows already keyed by field (`domain.evidence.csv_rows`).
        """
        session = await self.access.session(caller, session_id, "organizer")
        if len(rows) > MAX_ROWS:
            raise ImportRejected(
                f"more than {MAX_ROWS} rows in one upload; nothing was recorded",
                [{"row": MAX_ROWS + 1, "error": f"more than {MAX_ROWS} rows in one upload"}],
            )
        read = await _pure(len(rows), lambda: read_evidence(rows, session.requires.quiz_max))
        codes = [r.member for r in read if r.member is not None]
        members = await self.store.get_members(codes)
        expected = await self.store.expected_among(session_id, list(members))
        errors = await _pure(len(rows), lambda: check_members(read, members, expected, session_id))
        if errors:
            raise ImportRejected(f"{len(errors)} bad row(s); nothing was recorded", errors)
        units = [members[code].unit for code in codes]
        outside = rows_outside(caller.scope, units)
        if outside:
            raise Forbidden(
                f"{len(outside)} row(s) outside your scope; nothing was recorded", outside
            )
        if not read:
            return {"created": 0, "updated": 0}
        lock = self._merging.setdefault(session_id, asyncio.Lock())
        async with lock:
            return await self._merge(caller, session_id, read, codes, units, now)

    async def _merge(
        self,
        caller: Caller,
        session_id: int,
        read: list[EvidenceRow],
        codes: list[str],
        units: list[str],
        now: datetime | None,
    ) -> dict[str, int]:
        """Lay the rows over what is stored and write them with the audit entry.

        Two instances merging uploads of the same members at the same moment can still
        lose one's fields (the store takes whole rows); uploads of one session meet on one
        instance's lock only."""
        now = now or datetime.now(UTC)
        stored = await self.store.list_evidence(session_id, codes)
        entry = caller.entry(
            "evidence_recorded",
            now,
            session_id=session_id,
            target=codes[0] if len(codes) == 1 else None,
            detail=f"{len(codes)} member(s)",
            unit=caller.scope.tree.common_ancestor(set(units)) or caller.scope.root,
        )
        merged = await _pure(len(read), lambda: merge_evidence(read, stored, session_id, now))
        created, updated = await self.store.upsert_evidence(merged, audit=entry)
        return {"created": created, "updated": updated}
