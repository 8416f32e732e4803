"""Reading the audit log: admins see the entries about their own subtree, newest first.

Entries are written by the stores in the same transaction as the change they record (see
`ports.Store`); nothing here or anywhere in the API changes or deletes one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from streamsvc.domain.models import AuditEntry
from streamsvc.domain.policy import Caller
from streamsvc.domain.reports import parse_range
from streamsvc.ports import Store

__all__ = ["AuditService", "audit_range"]


def audit_range(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """`from`/`to` as the reports take them, each optional here (no bound)."""
    if not start and not end:
        return None, None
    low, high = parse_range(start or "1970-01-01", end or "9999-12-30")
    return (low if start else None), (high if end else None)


class AuditService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def entries(
        self,
        caller: Caller,
        start: datetime | None,
        end: datetime | None,
        *,
        session_id: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> AsyncIterator[AuditEntry]:
        """The entries about the caller's scope (admins only), newest first, streamed."""
        caller.allow("admin")
        scope = caller.scope
        async for entry in self.store.iter_audit(
            start, end, session_id=session_id, actor=actor, action=action
        ):
            if scope.whole or (entry.unit is not None and scope.covers(entry.unit)):
                yield entry
