"""The export columns, shared by the CSV file and the workbook."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from streamsvc.domain.models import Unit
from streamsvc.domain.reconcile import AttendanceRecord, Summary
from streamsvc.domain.reports import YearlyReport
from streamsvc.domain.timefmt import format_ts

__all__ = [
    "COLUMNS",
    "CSV_BOOLEANS",
    "SUMMARY_COLUMNS",
    "YEARLY_MEMBER_COLUMNS",
    "YEARLY_UNIT_COLUMNS",
    "Booleans",
    "Row",
    "UnitSummaries",
    "record_rows",
    "summary_rows",
    "yearly_member_rows",
    "yearly_unit_rows",
]

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
    "reflection",
    "quiz_score",
    "completed",
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
    "completed",
)

#: The yearly report's sheets: the members (also its CSV) and the units.
YEARLY_MEMBER_COLUMNS: tuple[str, ...] = (
    "member",
    "full_name",
    "unit",
    "unit_name",
    "sessions",
    "absent",
    "excused",
    "made_up",
    "incomplete",
)
YEARLY_UNIT_COLUMNS: tuple[str, ...] = (
    "code",
    "name",
    "expected",
    "attended",
    "completed",
    "attendance_rate",
    "completion_rate",
    "plans_owed",
    "plans_handed_in",
)

#: One row of cells; None is an empty cell.
Row = tuple[Any, ...]
#: How a row spells (false, true): the workbook keeps real booleans, the CSV writes words.
Booleans = tuple[Any, Any]
CSV_BOOLEANS: Booleans = ("false", "true")
#: Called once the records are written: (every unit with its SUMMARY, the total SUMMARY).
UnitSummaries = Callable[[], tuple[list[tuple[Unit, Summary]], Summary]]


def record_rows(
    records: Iterable[AttendanceRecord],
    unit_names: Mapping[str, str],
    booleans: Booleans = (False, True),
) -> Iterator[Row]:
    """One row of COLUMNS per record: times in UTC (RFC 3339), flags joined with `;`, a
    missing quiz score an empty cell, `reflection` and `completed` as `booleans` spells them."""
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
            booleans[r.reflection],
            r.quiz_score,
            booleans[r.completed],
        )


def summary_rows(summaries: UnitSummaries) -> Iterator[Row]:
    """SUMMARY_COLUMNS per unit, then one `total` row with no code."""
    by_unit, total = summaries()
    for unit, s in by_unit:
        yield (unit.code, unit.name, *_counts(s))
    yield (None, "total", *_counts(total))


def _counts(s: Summary) -> tuple[Any, ...]:
    return (s.expected, s.present, s.late, s.excused, s.made_up, s.absent, s.rate, s.completed)


def yearly_member_rows(report: YearlyReport, unit_names: Mapping[str, str]) -> Iterator[Row]:
    """YEARLY_MEMBER_COLUMNS per member of the yearly report."""
    for m in report.members:
        yield (
            m.member,
            m.full_name,
            m.unit,
            unit_names.get(m.unit),
            m.sessions,
            m.absent,
            m.excused,
            m.made_up,
            m.incomplete,
        )


def yearly_unit_rows(report: YearlyReport) -> Iterator[Row]:
    """YEARLY_UNIT_COLUMNS per unit of the yearly report."""
    for u in report.units:
        yield (
            u.code,
            u.name,
            u.expected,
            u.attended,
            u.completed,
            u.attendance_rate,
            u.completion_rate,
            u.plans_owed,
            u.plans_handed_in,
        )
