"""The yearly absence report: who was absent without excuse or make-up, and at which sessions.

Its date range is parsed here too, so the HTTP API and the command line read `from`/`to` the
same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from streamsvc.domain.reconcile import AttendanceRecord
from streamsvc.domain.timefmt import format_ts, parse_ts
from streamsvc.errors import InvalidInput

__all__ = ["AbsenceReport", "AbsenceTally", "AbsentMember", "parse_range"]


@dataclass(slots=True)
class AbsentMember:
    """One member of the report, with the ids of the sessions they were absent at."""

    member: str
    full_name: str
    unit: str
    sessions: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "full_name": self.full_name,
            "unit": self.unit,
            "absent": len(self.sessions),
            "sessions": self.sessions,
        }


@dataclass(frozen=True, slots=True)
class AbsenceReport:
    """Members absent (unexcused, not made up) at least once at the closed sessions counted."""

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
    """Gathers the absent members session by session, as each session's records stream past.

    Only `absent` counts: an excused or made-up absence does not. Sessions are added oldest
    first, so a member's name and unit are those of the latest session's roster.
    """

    def __init__(self) -> None:
        self._absent: dict[str, AbsentMember] = {}
        self._sessions: list[int] = []

    def add_session(self, session_id: int, records: Iterable[AttendanceRecord]) -> None:
        """Count one session's records, consuming them."""
        absent = self._absent
        self._sessions.append(session_id)
        for record in records:
            if record.status != "absent":
                continue
            held = absent.get(record.member)
            if held is None:
                held = absent[record.member] = AbsentMember(
                    record.member, record.full_name, record.unit
                )
            else:  # the latest session's roster wins
                held.full_name, held.unit = record.full_name, record.unit
            held.sessions.append(session_id)

    def report(self, start: datetime, end: datetime) -> AbsenceReport:
        """The report over the sessions added, members by code."""
        members = [self._absent[code] for code in sorted(self._absent)]
        return AbsenceReport(start, end, list(self._sessions), members)


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
