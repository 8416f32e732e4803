"""Recording study evidence: reflections, quiz scores and self-study confirmations, all or
nothing, each member inside the caller's scope."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from streamsvc.domain.evidence import MAX_ROWS, check_members, merge_evidence, read_evidence
from streamsvc.domain.policy import Caller, rows_outside
from streamsvc.errors import Forbidden, ImportRejected
from streamsvc.ports import Store
from streamsvc.services.access import AccessService

__all__ = ["EvidenceService"]


class EvidenceService:
    def __init__(self, store: Store, access: AccessService | None = None) -> None:
        self.store = store
        self.access = access or AccessService(store)

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
        read = read_evidence(rows, session.requires.quiz_max)
        codes = [r.member for r in read if r.member is not None]
        members = await self.store.get_members(codes)
        expected = await self.store.expected_among(session_id, list(members))
        errors = check_members(read, members, expected, session_id)
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
        created, updated = await self.store.upsert_evidence(
            merge_evidence(read, stored, session_id, now), audit=entry
        )
        return {"created": created, "updated": updated}
