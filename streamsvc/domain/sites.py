"""Rules for registering many sites in one upload: every bad row is listed, nothing is
applied by halves (as for the roster, `domain/roster.py`).

Rows are numbered from 1 (the first site in the upload; in a CSV file, the line after the
header). A CSV cell is text, so a blank `unit` or `capacity` means none and a capacity must be
written in digits; JSON keeps its types (`null` for none).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from streamsvc.domain.models import FORMS

__all__ = ["MAX_CAPACITY", "MAX_SITES", "SiteFields", "validate_sites"]

RowError = dict[str, Any]
#: A valid row: (name, kind, unit or None, capacity or None).
SiteFields = tuple[str, str, str | None, int | None]

MAX_SITES = 50_000
MAX_NAME = 300
MAX_CAPACITY = 10_000_000


def _name(value: Any) -> tuple[str | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "missing name"
    if not isinstance(value, str):
        return None, "name must be a string"
    value = value.strip()
    if len(value) > MAX_NAME:
        return None, f"name longer than {MAX_NAME} characters"
    return value, None


def _capacity(value: Any) -> tuple[int | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or not 0 <= value <= MAX_CAPACITY:
        return None, f"capacity must be a whole number from 0 to {MAX_CAPACITY}"
    return value, None


def validate_sites(
    rows: Sequence[Any], unit_codes: Collection[str]
) -> tuple[list[SiteFields], list[RowError]]:
    """Check an upload of sites: a name, a known kind, a known unit (or none), a capacity.

    A name used twice in one upload is an error: the organizer hands each coordinator the
    token printed beside its site's name, and two sites of one name on the sheet (and on the
    dashboard) cannot be told apart; it is nearly always a row pasted twice.
    """
    if len(rows) > MAX_SITES:
        return [], [{"row": MAX_SITES + 1, "error": f"more than {MAX_SITES} sites in one upload"}]
    errors: list[RowError] = []
    sites: list[SiteFields] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            errors.append({"row": n, "error": "not an object"})
            continue
        name, problem = _name(row.get("name"))
        kind = row.get("kind")
        if isinstance(kind, str):
            kind = kind.strip()
        if problem is None and kind not in FORMS:
            problem = f"kind must be one of {', '.join(FORMS)}"
        unit = row.get("unit")
        if isinstance(unit, str):
            unit = unit.strip() or None
        if problem is None and unit is not None and unit not in unit_codes:
            problem = f"unknown unit {unit}" if isinstance(unit, str) else "unit must be a code"
        capacity, bad = _capacity(row.get("capacity"))
        problem = problem or bad
        if problem is None and name in seen:
            problem = f"duplicate name {name} (also row {seen[name]})"
        if problem:
            errors.append({"row": n, "error": problem})
            continue
        assert name is not None and isinstance(kind, str)
        seen[name] = n
        sites.append((name, kind, unit, capacity))
    return sites, errors
