"""The export columns, shared by the CSV file and the workbook."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from streamsvc.domain.models import Unit
from streamsvc.domain.reconcile import AttendanceRecord, Summary
from streamsvc.domain.timefmt import format_ts

__all__ = ["COLUMNS", "SUMMARY_COLUMNS", "Row", "UnitSummaries", "record_rows", "summary_rows"]

#: The contract's header, in this order, exactly.
COLUMNS: tuple[str, ...] = (
    "member",
    "full_name",
    "unit",
    "unit_name",
    "status",
    "form",
    "site",
    "first_in",
    "last_out",
    "minutes",
    "flags",
    "excuse",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "code",
    "name",
    "expected",
    "present",
    "late",
    "excused",
    "made_up",
    "absent",
    "rate",
)

#: One row of cells; None is an empty cell.
Row = tuple[Any, ...]
#: Called once the records are written: (every unit with its SUMMARY, the total SUMMARY).
UnitSummaries = Callable[[], tuple[list[tuple[Unit, Summary]], Summary]]


def record_rows(
    records: Iterable[AttendanceRecord], unit_names: Mapping[str, str]
) -> Iterator[Row]:
    """One row of COLUMNS per record: times in UTC (RFC 3339), flags joined with `;`."""
    flag_text: dict[tuple[str, ...], str] = {}  # records share their flag tuples
    for r in records:
        flags = flag_text.get(r.flags)
        if flags is None:
            flags = flag_text[r.flags] = ";".join(r.flags)
        yield (
            r.member,
            r.full_name,
            r.unit,
            unit_names.get(r.unit),
            r.status,
            r.form,
            r.site,
            format_ts(r.first_in) if r.first_in is not None else None,
            format_ts(r.last_out) if r.last_out is not None else None,
            r.minutes,
            flags,
            r.excuse,
        )


def summary_rows(summaries: UnitSummaries) -> Iterator[Row]:
    """SUMMARY_COLUMNS per unit, then one `total` row with no code."""
    by_unit, total = summaries()
    for unit, s in by_unit:
        yield (unit.code, unit.name, *_counts(s))
    yield (None, "total", *_counts(total))


def _counts(s: Summary) -> tuple[Any, ...]:
    return (s.expected, s.present, s.late, s.excused, s.made_up, s.absent, s.rate)
