"""Importing and searching the roster: units and members, each caller within their scope."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from streamsvc.domain.models import Member, Unit
from streamsvc.domain.policy import Caller, members_outside, units_outside
from streamsvc.domain.roster import validate_members, validate_units
from streamsvc.errors import Forbidden, ImportRejected, InvalidInput
from streamsvc.ports import Store

__all__ = ["RosterService"]

MAX_PAGE = 1000


def _outside(errors: list[dict[str, object]]) -> Forbidden:
    return Forbidden(f"{len(errors)} row(s) outside your scope; nothing was imported", errors)


class RosterService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def import_units(self, caller: Caller, rows: Sequence[Any]) -> dict[str, int]:
        """All-or-nothing upsert of units by code, every row inside the caller's scope."""
        caller.allow("admin")
        existing = {u.code: u for u in await self.store.list_units()}
        units, errors = validate_units(rows, existing)
        if errors:
            raise ImportRejected(f"{len(errors)} bad row(s); nothing was imported", errors)
        outside = units_outside(caller.scope, units, existing)
        if outside:
            raise _outside(outside)
        if not units:
            return {"created": 0, "updated": 0}
        entry = caller.entry("roster_imported", datetime.now(UTC), detail=f"{len(units)} unit(s)")
        created, updated = await self.store.upsert_units(units, audit=entry)
        return {"created": created, "updated": updated}

    async def import_members(self, caller: Caller, rows: Sequence[Any]) -> dict[str, int]:
        """All-or-nothing upsert of members by code, every row inside the caller's scope."""
        caller.allow("admin")
        unit_codes = {u.code for u in await self.store.list_units()}
        members, errors = validate_members(rows, unit_codes)
        if errors:
            raise ImportRejected(f"{len(errors)} bad row(s); nothing was imported", errors)
        if not caller.scope.whole:
            existing = await self.store.get_members([m.code for m in members])
            outside = members_outside(caller.scope, members, existing)
            if outside:
                raise _outside(outside)
        if not members:
            return {"created": 0, "updated": 0}
        entry = caller.entry(
            "roster_imported", datetime.now(UTC), detail=f"{len(members)} member(s)"
        )
        created, updated = await self.store.upsert_members(members, audit=entry)
        return {"created": created, "updated": updated}

    async def list_units(self, caller: Caller) -> list[Unit]:
        """The units of the caller's scope, and those above its root (their names are how a
        session for a whole province reads to a district)."""
        caller.allow("viewer")
        root = caller.scope.root
        above = set(caller.scope.tree.lineage(root)) if root is not None else set()
        return [
            u
            for u in await self.store.list_units()
            if u.code in above or caller.scope.covers(u.code)
        ]

    async def search_members(
        self, caller: Caller, unit: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Member], int]:
        """Members in `unit`'s subtree (the caller's own by default), which must lie in scope."""
        caller.allow("viewer")
        if not 0 < limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise InvalidInput("offset must not be negative")
        if unit is None:
            unit = caller.scope.root
        else:
            caller.allow("viewer", units=[unit])
        return await self.store.search_members(unit, query or None, limit, offset)
