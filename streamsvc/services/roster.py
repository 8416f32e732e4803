"""Importing and searching the roster: units and members."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamsvc.domain.models import Member, Unit
from streamsvc.domain.roster import validate_members, validate_units
from streamsvc.errors import ImportRejected, InvalidInput
from streamsvc.ports import Store

__all__ = ["RosterService"]

MAX_PAGE = 1000


class RosterService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def import_units(self, rows: Sequence[Any]) -> dict[str, int]:
        """All-or-nothing upsert of units by code."""
        existing = {u.code: u for u in await self.store.list_units()}
        units, errors = validate_units(rows, existing)
        if errors:
            raise ImportRejected(f"{len(errors)} bad row(s); nothing was imported", errors)
        created, updated = await self.store.upsert_units(units) if units else (0, 0)
        return {"created": created, "updated": updated}

    async def import_members(self, rows: Sequence[Any]) -> dict[str, int]:
        """All-or-nothing upsert of members by code."""
        unit_codes = {u.code for u in await self.store.list_units()}
        members, errors = validate_members(rows, unit_codes)
        if errors:
            raise ImportRejected(f"{len(errors)} bad row(s); nothing was imported", errors)
        created, updated = await self.store.upsert_members(members) if members else (0, 0)
        return {"created": created, "updated": updated}

    async def list_units(self) -> list[Unit]:
        return await self.store.list_units()

    async def search_members(
        self, unit: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Member], int]:
        if not 0 < limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise InvalidInput("offset must not be negative")
        return await self.store.search_members(unit, query or None, limit, offset)
