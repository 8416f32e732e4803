"""Roster import rules: every bad row is found and listed, so nothing is applied by halves.

Rows are numbered from 1 (the first unit or member in the upload; in a CSV file, the line
after the header).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from streamsvc.domain.models import Member, Unit

__all__ = ["RowError", "validate_members", "validate_units"]

RowError = dict[str, Any]
MAX_CODE = 64
MAX_NAME = 300


def _text(
    row: Mapping[str, Any], key: str, *, required: bool = True
) -> tuple[str | None, str | None]:
    """(value, error) for a text field; blank optional fields become None."""
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, (f"missing {key}" if required else None)
    if not isinstance(value, str):
        return None, f"{key} must be a string"
    value = value.strip()
    limit = MAX_CODE if key in ("code", "unit", "parent") else MAX_NAME
    if len(value) > limit:
        return None, f"{key} longer than {limit} characters"
    return value, None


def validate_units(
    rows: Sequence[Any], existing: Mapping[str, Unit]
) -> tuple[list[Unit], list[RowError]]:
    """Check an upload of units against itself and the units already stored."""
    errors: list[RowError] = []
    units: list[Unit] = []
    rows_of: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            errors.append({"row": n, "error": "not an object"})
            continue
        code, e1 = _text(row, "code")
        name, e2 = _text(row, "name")
        parent, e3 = _text(row, "parent", required=False)
        problem = e1 or e2 or e3
        if problem is None and code in rows_of:
            problem = f"duplicate code {code} (also row {rows_of[code]})"
        if problem is None and parent == code:
            problem = f"unit {code} cannot be its own parent"
        if problem:
            errors.append({"row": n, "error": problem})
            continue
        assert code is not None and name is not None
        rows_of[code] = n
        units.append(Unit(code, name, parent))

    parents = {u.code: u.parent for u in existing.values()}
    parents.update({u.code: u.parent for u in units})
    for unit in units:
        if unit.parent is not None and unit.parent not in parents:
            errors.append({"row": rows_of[unit.code], "error": f"unknown parent {unit.parent}"})
    errors.extend(_cycles(units, parents, rows_of))
    errors.sort(key=lambda e: e["row"])
    return units, errors


def _cycles(
    units: Sequence[Unit], parents: Mapping[str, str | None], rows_of: Mapping[str, int]
) -> list[RowError]:
    """One error per uploaded unit that sits on a parent cycle."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = known to reach a root
    on_cycle: set[str] = set()
    for unit in units:
        path: list[str] = []
        code: str | None = unit.code
        while code is not None and code in parents and state.get(code) != 2:
            if state.get(code) == 1:
                on_cycle.update(path[path.index(code) :])
                break
            state[code] = 1
            path.append(code)
            code = parents[code]
        for c in path:
            state[c] = 2
    return [
        {"row": rows_of[c], "error": f"unit {c} is on a parent cycle"}
        for c in sorted(on_cycle, key=lambda c: rows_of.get(c, 0))
        if c in rows_of
    ]


def validate_members(
    rows: Sequence[Any], unit_codes: Collection[str]
) -> tuple[list[Member], list[RowError]]:
    """Check an upload of members: every field present, units known, codes unique."""
    errors: list[RowError] = []
    members: list[Member] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            errors.append({"row": n, "error": "not an object"})
            continue
        code, e1 = _text(row, "code")
        full_name, e2 = _text(row, "full_name")
        unit, e3 = _text(row, "unit")
        problem = e1 or e2 or e3
        if problem is None and code in seen:
            problem = f"duplicate code {code} (also row {seen[code]})"
        if problem is None and unit not in unit_codes:
            problem = f"unknown unit {unit}"
        if problem:
            errors.append({"row": n, "error": problem})
            continue
        assert code is not None and full_name is not None and unit is not None
        seen[code] = n
        members.append(Member(code, full_name, unit))
    return members, errors
