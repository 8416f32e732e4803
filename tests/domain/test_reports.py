"""The absence report's rules and its date range, as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamsvc.domain.reconcile import AttendanceRecord, Status
from streamsvc.domain.reports import AbsenceTally, parse_range
from streamsvc.errors import InvalidInput


def record(
    member: str,
    status: Status,
    full_name: str = "Nguyễn Văn A",
    unit: str = "C1",
    completed: bool | None = None,
):
    """A record; one who attended completed it unless told otherwise."""
    if completed is None:
        completed = status in ("present", "late", "made_up")
    return AttendanceRecord(
        member, full_name, unit, status, None, None, None, None, None, 0, (), None,
        completed=completed,
    )  # fmt: skip


def test_only_an_unexcused_absence_not_made_up_counts():
    tally = AbsenceTally()
    statuses: list[Status] = ["present", "late", "excused", "made_up", "absent"]
    tally.add_session(7, [record(f"DV{i}", status) for i, status in enumerate(statuses)])
    report = tally.report(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert report.to_json() == {
        "from": "2026-01-01T00:00:00Z",
        "to": "2027-01-01T00:00:00Z",
        "sessions": [7],
        "members": [
            {
                "member": "DV4",
                "full_name": "Nguyễn Văn A",
                "unit": "C1",
                "absent": 1,
                "sessions": [7],
                "incomplete": 0,
                "incomplete_sessions": [],
            }
        ],
    }


def test_members_by_code_with_the_latest_roster_and_every_session_counted():
    tally = AbsenceTally()
    tally.add_session(3, [record("B", "absent"), record("A", "absent", "Old name", "C1")])
    tally.add_session(5, [record("A", "present")])
    tally.add_session(9, [record("A", "absent", "New name", "C2")])
    report = tally.report(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert report.sessions == [3, 5, 9]
    assert [(m.member, m.full_name, m.unit, m.sessions) for m in report.members] == [
        ("A", "New name", "C2", [3, 9]),
        ("B", "Nguyễn Văn A", "C1", [3]),
    ]


@pytest.mark.parametrize(
    ("start", "end", "low", "high"),
    [
        (
            "2026-01-31",
            "2026-01-31",
            datetime(2026, 1, 31, tzinfo=UTC),
            datetime(2026, 2, 1, tzinfo=UTC),
        ),
        (
            "2026-01-01T00:00:00+07:00",
            "2026-01-31T23:59:59+07:00",
            datetime(2025, 12, 31, 17, tzinfo=UTC),
            datetime(2026, 1, 31, 16, 59, 59, 1, tzinfo=UTC),
        ),
    ],
)
def test_a_range_is_half_open_with_the_last_day_included(start, end, low, high):
    assert parse_range(start, end) == (low, high)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (None, "2026-01-31", "from"),
        ("2026-01-01", "", "to"),
        ("2026-13-01", "2026-12-31", "from"),
        ("2026-01-01", "31/12/2026", "to"),
        ("2026-01-01T00:00:00", "2026-12-31", "from"),  # no offset
        ("2026-02-01", "2026-01-31", "to"),
    ],
)
def test_a_bad_range_names_the_field(start, end, field):
    with pytest.raises(InvalidInput) as caught:
        parse_range(start, end)
    assert caught.value.details == {"field": field}
