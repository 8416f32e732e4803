"""What both stores share beyond SQL: time columns, row mappers, the site-name cache, the
check-in facts built from the rows each store reads, chunking and search text.

The stores differ in how they reach their database and in how a time column looks
(integer microseconds in SQLite, `timestamptz` in PostgreSQL), so every mapper takes the
backend's time conversion; everything else here is written once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from streamsvc.domain.checkin import Facts, TargetInfo, first_presence_by_session
from streamsvc.domain.models import (
    ActionPlan,
    AuditEntry,
    Event,
    Evidence,
    Member,
    PlanRule,
    Requirements,
    Session,
    Site,
    User,
)
from streamsvc.domain.text import fold

__all__ = [
    "ExpectedCounts",
    "Row",
    "SiteNames",
    "TimeColumn",
    "as_is",
    "audit_from_row",
    "audit_values",
    "check_site_entries",
    "chunks",
    "dump_audience",
    "event_from_row",
    "evidence_from_row",
    "evidence_values",
    "facts_from_rows",
    "from_us",
    "like_pattern",
    "load_audience",
    "member_from_row",
    "plan_from_row",
    "plan_values",
    "search_text",
    "session_from_row",
    "session_rule_values",
    "site_from_row",
    "to_us",
    "user_from_row",
    "user_values",
]

T = TypeVar("T")

#: A backend's time column value -> an aware UTC datetime (None stays None).
TimeColumn = Callable[[Any], Any]


class Row(Protocol):
    """A row as either driver returns it: a tuple (sqlite3) or a Record (asyncpg)."""

    def __getitem__(self, index: int, /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime | None) -> int | None:
    """Aware datetime to integer microseconds since the epoch (SQLite's time column)."""
    if value is None:
        return None
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int | None) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)


def as_is(value: Any) -> Any:
    """The time conversion of a driver that already returns aware datetimes (asyncpg)."""
    return value


def chunks(items: Sequence[T], size: int = 900) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def search_text(code: str, full_name: str) -> str:
    return fold(f"{code} {full_name}")


def like_pattern(query: str) -> str:
    """A LIKE pattern matching the folded query anywhere, with LIKE's wildcards escaped."""
    escaped = fold(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def dump_audience(audience: Sequence[str]) -> str:
    return json.dumps(list(audience), ensure_ascii=False)


def load_audience(raw: str) -> tuple[str, ...]:
    return tuple(json.loads(raw))


# -- row mappers: rows in the column order of `storage.sql` ---------------------------------
def session_from_row(row: Row, when: TimeColumn, expected: int = 0) -> Session:
    """A row of `sql.SESSION_COLS` (`expected` is counted apart: not every read needs it)."""
    return Session(
        id=row[0],
        title=row[1],
        starts_at=when(row[2]),
        ends_at=when(row[3]),
        audience=load_audience(row[4]),
        late_after_minutes=row[5],
        makeup_for=row[6],
        state=row[7],
        closed_at=when(row[8]),
        expected=expected,
        requires=Requirements(bool(row[9]), row[10], float(row[11])),
        plans=None if row[12] is None else PlanRule(row[12], bool(row[13]), when(row[14])),
    )


def session_rule_values(
    requires: Requirements, plans: PlanRule | None, when: Callable[[datetime | None], Any]
) -> tuple[Any, ...]:
    """A session's requirements and plan rule in `sql.SESSION_RULE_COLS` order (no rule:
    every plan column null or default)."""
    return (
        requires.reflection,
        requires.quiz_pass,
        requires.quiz_max,
        None if plans is None else plans.depth,
        False if plans is None else plans.heads,
        None if plans is None else when(plans.due),
    )


def evidence_from_row(row: Row, when: TimeColumn) -> Evidence:
    """A row of `sql.EVIDENCE_COLS` (SQLite keeps booleans as 0/1)."""
    return Evidence(row[0], row[1], bool(row[2]), row[3], bool(row[4]), when(row[5]))


def evidence_values(row: Evidence, when: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """A row in `sql.EVIDENCE_COLS` order (`updated_at` already set)."""
    assert row.updated_at is not None
    return (
        row.session_id,
        row.member,
        row.reflection,
        row.quiz_score,
        row.self_study,
        when(row.updated_at),
    )


def plan_from_row(row: Row, when: TimeColumn) -> ActionPlan:
    """A row of `sql.ACTION_PLAN_COLS`."""
    return ActionPlan(row[0], row[1], row[2], when(row[3]), row[4], row[5])


def plan_values(plan: ActionPlan, when: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """A plan in `sql.ACTION_PLAN_COLS` order."""
    return (
        plan.session_id,
        plan.unit,
        plan.kind,
        when(plan.handed_in_at),
        plan.recorded_by,
        plan.note,
    )


def site_from_row(row: Row) -> Site:
    """A row of `sql.SITE_COLS`."""
    return Site(row[0], row[1], row[2], row[3], row[4], row[5])


def event_from_row(row: Row, when: TimeColumn) -> Event:
    """A row of `sql.EVENT_COLS`."""
    return Event(
        row[0],
        row[1],
        row[2],
        row[3],
        when(row[4]),
        when(row[5]),
        row[6],
        row[7],
        row[8],
        bool(row[9]),
        bool(row[10]),
    )


def member_from_row(row: Row) -> Member:
    """A row of `sql.MEMBER_COLS`."""
    return Member(row[0], row[1], row[2])


def user_from_row(row: Row) -> User:
    """A row of `sql.USER_COLS` (SQLite keeps `active` as 0/1)."""
    return User(row[0], row[1], row[2], row[3], bool(row[4]), row[5])


def user_values(user: User) -> tuple[str, str, str, str, bool, str]:
    """A user in `sql.USER_COLS` order."""
    return (user.login, user.full_name, user.unit, user.role, user.active, user.password_hash)


def audit_from_row(row: Row, when: TimeColumn) -> AuditEntry:
    """A row of `sql.AUDIT_COLS` (any columns after them are sort keys, ignored)."""
    return AuditEntry(when(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def audit_values(entry: AuditEntry, when: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """An entry in `sql.AUDIT_COLS` order, its time as the backend stores it."""
    return (
        when(entry.at),
        entry.actor,
        entry.action,
        entry.session_id,
        entry.target,
        entry.detail,
        entry.address,
        entry.unit,
    )


def check_site_entries(new: Sized, audit: Sized) -> None:
    """`create_sites` takes no entries or one per site: anything else is a caller's bug,
    refused before a site is stored."""
    if audit and len(audit) != len(new):
        raise ValueError(f"{len(audit)} audit entries for {len(new)} sites")


class ExpectedCounts:
    """Each session's `expected` count, kept until what it depends on moves.

    Counting walks the audience's subtrees over the members: 0.5-0.8 s on PostgreSQL with
    2,000,000 members, and every request about a session (a monitor's hello, a device's
    welcome, a page) reads its session. The count depends only on the roster (any unit or
    member import bumps `roster_version` in its own transaction) and, once frozen, on the
    session's frozen list; the stamp is read in the same statement as the session, before
    the count, so a count is never kept under a newer stamp than the roster it saw.
    """

    def __init__(self, max_sessions: int = 4096) -> None:
        self.max_sessions = max_sessions
        self._held: dict[int, tuple[Any, int]] = {}

    @staticmethod
    def stamp(row: Row) -> tuple[Any, ...]:
        """What a row of `sql.SESSION_BY_ID` says the count depends on: audience, frozen,
        the roster's version."""
        return (row[4], bool(row[15]), row[16])

    def get(self, session_id: int, stamp: tuple[Any, ...]) -> int | None:
        held = self._held.get(session_id)
        return held[1] if held is not None and held[0] == stamp else None

    def put(self, session_id: int, stamp: tuple[Any, ...], count: int) -> None:
        if len(self._held) >= self.max_sessions:
            self._held.clear()
        self._held[session_id] = (stamp, count)


class SiteNames:
    """Site names by id, for `already_present`. A site's name does not change once
    registered, so one cache per store object is never stale."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}

    def missing(self, site_ids: Iterable[int]) -> list[int]:
        names = self.names
        return sorted({s for s in site_ids if s not in names})

    def add(self, rows: Iterable[Row]) -> None:
        """(id, name) rows read for `missing()`."""
        for site_id, name in rows:
            self.names[site_id] = name


def facts_from_rows(
    sessions: Mapping[int, Session],
    member_rows: Iterable[Row],
    stored_ids: set[str],
    checkin_rows: Iterable[Row],
    site_names: Mapping[int, str],
    target_rows: Iterable[Row],
    when: TimeColumn,
) -> Facts:
    """The facts a group of check-ins is decided on, from the rows a store read in the
    transaction it will write in:

    - `member_rows`: (code, full_name, unit, unit name) of the members the group names;
    - `checkin_rows`: (session_id, member, site_id, ts) of their counted check-ins;
    - `target_rows`: (id, session_id, site_id, type, member, voided) of the events voids name.
    """
    members: dict[str, Member] = {}
    unit_names: dict[str, str] = {}
    for code, full_name, unit, unit_name in member_rows:
        members[code] = Member(code, full_name, unit)
        unit_names[unit] = unit_name
    presence = first_presence_by_session(
        ((s, m, site, when(ts)) for s, m, site, ts in checkin_rows), site_names
    )
    targets = {r[0]: TargetInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in target_rows}
    return Facts(sessions, members, stored_ids, presence, targets, unit_names=unit_names)
