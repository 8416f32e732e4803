"""The yearly reports: who was absent without excuse or make-up, or attended without
completing, and at which sessions; and the year per member and per unit.

Their date range is parsed here too, so the HTTP API and the command line read `from`/`to`
the same way.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from streamsvc.domain.models import Unit
from streamsvc.domain.reconcile import AttendanceRecord, Summary, depth_first
from streamsvc.domain.timefmt import format_ts, parse_ts
from streamsvc.errors import InvalidInput

__all__ = [
    "ATTENDED",
    "AbsenceReport",
    "AbsenceTally",
    "AbsentMember",
    "YearlyMember",
    "YearlyReport",
    "YearlyTally",
    "YearlyUnit",
    "parse_range",
]

#: The statuses of a member who attended: only they can complete a session.
ATTENDED: frozenset[str] = frozenset(("present", "late", "made_up"))


@dataclass(slots=True)
class AbsentMember:
    """One member of the report, with the ids of the sessions they were absent at and of
    those they attended without completing."""

    member: str
    full_name: str
    unit: str
    sessions: list[int] = field(default_factory=list)
    incomplete_sessions: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "full_name": self.full_name,
            "unit": self.unit,
            "absent": len(self.sessions),
            "sessions": self.sessions,
            "incomplete": len(self.incomplete_sessions),
            "incomplete_sessions": self.incomplete_sessions,
        }


@dataclass(frozen=True, slots=True)
class AbsenceReport:
    """Members absent (unexcused, not made up) or incomplete (attended without completing)
    at least once at the closed sessions counted."""

    start: datetime
    end: datetime
    sessions: list[int]
    members: list[AbsentMember]

    def to_json(self) -> dict[str, Any]:
        """The contract's `{"members": [...]}`, with the range and the sessions counted."""
        return {
            "from": format_ts(self.start),
            "to": format_ts(self.end),
            "sessions": self.sessions,
            "members": [m.to_json() for m in self.members],
        }


class AbsenceTally:
    """Gathers the absent and incomplete members session by session, as each session's
    records stream past.

    Only `absent` counts as an absence: an excused or made-up absence does not. A member who
    attended (`present`, `late`, `made_up`) and did not complete is incomplete, unless they
    were not expected there (`not_in_audience`): nothing was asked of them. Sessions are
    added oldest first, so a member's name and unit are those of the latest session's roster.
    """

    def __init__(self) -> None:
        self._absent: dict[str, AbsentMember] = {}
        self._sessions: list[int] = []

    def add_session(self, session_id: int, records: Iterable[AttendanceRecord]) -> None:
        """Count one session's records, consuming them."""
        absent = self._absent
        self._sessions.append(session_id)
        for record in records:
            if record.status == "absent":
                missed = True
            elif (
                not record.completed
                and record.status in ATTENDED
                and not (record.flags and "not_in_audience" in record.flags)
            ):
                missed = False  # attended without completing; unless nobody expected them
            else:
                continue
            held = absent.get(record.member)
            if held is None:
                held = absent[record.member] = AbsentMember(
                    record.member, record.full_name, record.unit
                )
            else:  # the latest session's roster wins
                held.full_name, held.unit = record.full_name, record.unit
            (held.sessions if missed else held.incomplete_sessions).append(session_id)

    def report(self, start: datetime, end: datetime) -> AbsenceReport:
        """The report over the sessions added, members by code."""
        members = [self._absent[code] for code in sorted(self._absent)]
        return AbsenceReport(start, end, list(self._sessions), members)


@dataclass(slots=True)
class YearlyMember:
    """One member's year: at how many closed sessions they were expected, and how many of
    those they missed without reason, were excused at, made up, attended without completing."""

    member: str
    full_name: str
    unit: str
    sessions: int = 0
    absent: int = 0
    excused: int = 0
    made_up: int = 0
    incomplete: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "full_name": self.full_name,
            "unit": self.unit,
            "sessions": self.sessions,
            "absent": self.absent,
            "excused": self.excused,
            "made_up": self.made_up,
            "incomplete": self.incomplete,
        }


@dataclass(slots=True)
class YearlyUnit:
    """One unit's year, its whole subtree counted, summed over the sessions: member places
    expected, attended (present, late, made up) and completed; action plans owed and handed in."""

    code: str
    name: str
    expected: int = 0
    attended: int = 0
    completed: int = 0
    plans_owed: int = 0
    plans_handed_in: int = 0

    @property
    def attendance_rate(self) -> float:
        return round(self.attended / self.expected, 4) if self.expected else 0.0

    @property
    def completion_rate(self) -> float:
        """Completed over expected, as `rate` is attended over expected: the province's goal
        is every member completing, not every attending member."""
        return round(self.completed / self.expected, 4) if self.expected else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "expected": self.expected,
            "attended": self.attended,
            "completed": self.completed,
            "attendance_rate": self.attendance_rate,
            "completion_rate": self.completion_rate,
            "plans_owed": self.plans_owed,
            "plans_handed_in": self.plans_handed_in,
        }


@dataclass(frozen=True, slots=True)
class YearlyReport:
    """The yearly report over the closed sessions counted: members by code, units depth-first."""

    start: datetime
    end: datetime
    sessions: list[int]
    members: list[YearlyMember]
    units: list[YearlyUnit]

    def to_json(self) -> dict[str, Any]:
        """The spec's `{"members": [...], "units": [...]}`, with the range and the sessions."""
        return {
            "from": format_ts(self.start),
            "to": format_ts(self.end),
            "sessions": self.sessions,
            "members": [m.to_json() for m in self.members],
            "units": [u.to_json() for u in self.units],
        }


class YearlyTally:
    """Gathers the yearly report session by session: each session's records as they stream
    past (one small row per member of the scope), its per-unit summary, and its plans.

    Only expected members count (a `not_in_audience` record does not, as in SUMMARY).
    Sessions are added oldest first, so a member's name and unit are the latest roster's.
    """

    def __init__(self, units: Mapping[str, Unit]) -> None:
        self._tree = units
        self._members: dict[str, YearlyMember] = {}
        self._units: dict[str, YearlyUnit] = {}
        self._sessions: list[int] = []

    def add_records(self, session_id: int, records: Iterable[AttendanceRecord]) -> None:
        """Count one session's records (of the members in scope), consuming them."""
        members = self._members
        self._sessions.append(session_id)
        for record in records:
            if record.flags and "not_in_audience" in record.flags:
                continue
            held = members.get(record.member)
            if held is None:
                held = members[record.member] = YearlyMember(
                    record.member, record.full_name, record.unit
                )
            else:
                held.full_name, held.unit = record.full_name, record.unit
            held.sessions += 1
            status = record.status
            if status == "absent":
                held.absent += 1
            elif status == "excused":
                held.excused += 1
            else:
                if status == "made_up":
                    held.made_up += 1
                if not record.completed:
                    held.incomplete += 1

    def add_summaries(self, by_unit: Iterable[tuple[Unit, Summary]]) -> None:
        """Add one session's per-unit summary (each unit counting its whole subtree); a unit
        with nobody expected adds nothing and gets no row of its own."""
        for unit, summary in by_unit:
            if not summary.expected:
                continue
            row = self._unit(unit.code)
            row.expected += summary.expected
            row.attended += summary.present + summary.late + summary.made_up
            row.completed += summary.completed

    def add_plans(self, owed: Iterable[tuple[str, bool]], scope: Container[str] | None) -> None:
        """Add one session's owed plans, `(unit code, handed in)` each: every unit (in
        `scope`) from the owing unit up to the root counts it, as a subtree."""
        tree = self._tree
        for code, handed_in in owed:
            seen: set[str] = set()
            unit = tree.get(code)
            while unit is not None and unit.code not in seen:
                seen.add(unit.code)
                if scope is None or unit.code in scope:
                    row = self._unit(unit.code)
                    row.plans_owed += 1
                    row.plans_handed_in += 1 if handed_in else 0
                unit = tree.get(unit.parent) if unit.parent is not None else None

    def report(self, start: datetime, end: datetime) -> YearlyReport:
        """The report over the sessions added: members by code, units depth-first from the
        roots, children by code."""
        members = [self._members[code] for code in sorted(self._members)]
        roots = sorted(code for code, unit in self._tree.items() if unit.parent is None)
        units = [
            self._units[unit.code]
            for unit in depth_first(self._tree, roots)
            if unit.code in self._units
        ]
        return YearlyReport(start, end, list(self._sessions), members, units)

    def _unit(self, code: str) -> YearlyUnit:
        row = self._units.get(code)
        if row is None:
            unit = self._tree.get(code)
            row = self._units[code] = YearlyUnit(code, unit.name if unit is not None else code)
        return row


def parse_range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The report's `from`/`to` as a half-open UTC range [start, end).

    A date (`2026-01-31`) is a whole UTC day, `to` included; an RFC 3339 time with an offset
    is taken as is (`to` still included), for a province that wants its own midnight.
    """
    low = _bound(start, "from", end_of_day=False)
    high = _bound(end, "to", end_of_day=True)
    if high <= low:
        raise InvalidInput("to must not be before from", {"field": "to"})
    return low, high


def _bound(value: str | None, name: str, *, end_of_day: bool) -> datetime:
    if not value:
        raise InvalidInput(f"{name} is required, as a date (YYYY-MM-DD)", {"field": name})
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            midnight = datetime.combine(day, time(0), tzinfo=UTC)
            return midnight + timedelta(days=1) if end_of_day else midnight
    moment = parse_ts(value)
    if moment is None:
        raise InvalidInput(
            f"{name} must be a date (YYYY-MM-DD) or an RFC 3339 time with an offset",
            {"field": name},
        )
    return moment + timedelta(microseconds=1) if end_of_day else moment
