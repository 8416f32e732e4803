"""Reconciliation: a session's stored events in, one attendance record per member out.

A pure function over two sorted streams (expected members by code, events by member then
time), so that a 2,000,000-member session is exported in one pass with constant memory per
member: the caller streams both from the store and writes records out as they come.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from streamsvc.domain.models import Event, Evidence, Member, Requirements, Session, Site, Unit
from streamsvc.domain.timefmt import format_ts

__all__ = [
    "FLAGS",
    "STATUSES",
    "AttendanceRecord",
    "Flag",
    "Status",
    "Summary",
    "SummaryTally",
    "depth_first",
    "in_scope",
    "meets",
    "reconcile",
    "summarize",
    "summarize_by_unit",
]

Status = Literal["present", "late", "excused", "made_up", "absent"]
STATUSES: tuple[str, ...] = ("present", "late", "excused", "made_up", "absent")

Flag = Literal["multi_site", "left_early", "not_in_audience", "late_upload"]
FLAGS: tuple[str, ...] = ("multi_site", "left_early", "not_in_audience", "late_upload")

# Every combination of flags, prebuilt: bit i of the index stands for FLAGS[i]. Records share
# these tuples instead of building one each.
_FLAG_SETS: tuple[tuple[str, ...], ...] = tuple(
    tuple(flag for bit, flag in enumerate(FLAGS) if index >> bit & 1)
    for index in range(1 << len(FLAGS))
)
_MULTI_SITE, _LEFT_EARLY, _NOT_IN_AUDIENCE, _LATE_UPLOAD = 1, 2, 4, 8
_CONFIRMED = 16  # while folding only: a check-in at a self_study site, never a flag

_ALL_FLAGS = len(_FLAG_SETS) - 1

_MINUTE = timedelta(minutes=1)
_ZERO = timedelta(0)
_NO_EVIDENCE: Mapping[str, Evidence] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AttendanceRecord:
    """One member's attendance at one session: the contract's RECORD.

    `unit` is the member's unit code; `site` is the id of the site of the first check-in (sites
    are named by id in the contract) and `site_name` its name, for people reading an export.
    `reflection` and `quiz_score` are the evidence `completed` was judged on: handed in at this
    session, or at its make-up session for a `made_up` member.
    """

    member: str
    full_name: str
    unit: str
    status: Status
    form: str | None
    site: int | None
    site_name: str | None
    first_in: datetime | None
    last_out: datetime | None
    minutes: int
    flags: tuple[str, ...]
    excuse: str | None
    reflection: bool = False
    quiz_score: float | None = None
    completed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The contract's RECORD, times in UTC."""
        return {
            "member": self.member,
            "full_name": self.full_name,
            "unit": self.unit,
            "status": self.status,
            "form": self.form,
            "site": self.site,
            "site_name": self.site_name,
            "first_in": format_ts(self.first_in),
            "last_out": format_ts(self.last_out),
            "minutes": self.minutes,
            "flags": list(self.flags),
            "excuse": self.excuse,
            "reflection": self.reflection,
            "quiz_score": self.quiz_score,
            "completed": self.completed,
        }


# What one member's events add up to: (code, first_in, first_site_id, last_out, minutes,
# flag bits). Only members with a counted check-in are folded.
_Folded = tuple[str, datetime, int, datetime | None, int, int]


def _fold_events(
    events: Iterable[Event],
    starts_at: datetime,
    ends_at: datetime,
    self_study: frozenset[int],
) -> Iterator[_Folded]:
    """Fold each member's run of events into one tuple, in member order.

    A member is inside from a check-in until the next checkout at any site, so stays that
    overlap (a check-in at a second site while inside) merge as they come, and the sum of the
    clipped stays is the length of their union. Plain locals, no object per event: this loop
    is the whole cost of an export.
    """
    current: str | None = None
    first_in: datetime | None = None
    first_site = 0
    last_ts = starts_at
    last_out: datetime | None = None
    inside: datetime | None = None
    there = _ZERO
    bits = 0

    for event in events:
        member = event.member
        if member is None:
            continue
        if member != current:
            if current is not None:
                if member < current:
                    raise ValueError(
                        f"events are not sorted by member: {member!r} after {current!r}"
                    )
                if first_in is not None:
                    if inside is not None:
                        there += _overlap(inside, ends_at, starts_at, ends_at)
                    yield current, first_in, first_site, last_out, there // _MINUTE, bits
            current = member
            first_in = last_out = inside = None
            there = _ZERO
            bits = 0

        kind = event.type
        if kind == "checkin":
            if event.voided:
                continue
            ts = event.ts
            if ts is None:
                raise ValueError(f"check-in {event.id!r} has no ts")
            site_id = event.site_id
            if first_in is None:
                first_in = inside = ts
                first_site = site_id
            else:
                if ts < last_ts:
                    raise ValueError(f"events of member {member!r} are not sorted by ts")
                if site_id != first_site:
                    bits |= _MULTI_SITE
                if inside is None:
                    inside = ts
            last_ts = ts
            bits &= ~_LEFT_EARLY
            if event.late_upload:
                bits |= _LATE_UPLOAD
            if site_id in self_study:
                bits |= _CONFIRMED
        elif kind == "checkout":
            # A checkout with no check-in before it is a coordinator's slip: it counts for nothing.
            if first_in is None or event.voided:
                continue
            ts = event.ts
            if ts is None:
                raise ValueError(f"checkout {event.id!r} has no ts")
            if ts < last_ts:
                raise ValueError(f"events of member {member!r} are not sorted by ts")
            if inside is not None:
                there += _overlap(inside, ts, starts_at, ends_at)
                inside = None
            last_ts = last_out = ts
            if ts < ends_at:
                bits |= _LEFT_EARLY
            else:
                bits &= ~_LEFT_EARLY
            if event.late_upload:
                bits |= _LATE_UPLOAD

    if current is not None and first_in is not None:
        if inside is not None:
            there += _overlap(inside, ends_at, starts_at, ends_at)
        yield current, first_in, first_site, last_out, there // _MINUTE, bits


def _overlap(start: datetime, end: datetime, starts_at: datetime, ends_at: datetime) -> timedelta:
    """How much of the stay start..end lies inside the session's starts_at..ends_at."""
    if start < starts_at:
        start = starts_at
    if end > ends_at:
        end = ends_at
    return end - start if end > start else _ZERO


def meets(requires: Requirements, evidence: Evidence | None) -> bool:
    """Whether `evidence` meets every requirement of a session (attendance aside): the
    reflection handed in if required, a quiz score of at least the pass mark if one is set."""
    if requires.reflection and (evidence is None or not evidence.reflection):
        return False
    if requires.quiz_pass is not None:
        if evidence is None or evidence.quiz_score is None:
            return False
        return evidence.quiz_score >= requires.quiz_pass
    return True


def reconcile(
    session: Session,
    sites: Mapping[int, Site],
    expected: Iterable[Member],
    events: Iterable[Event],
    excuses: Mapping[str, str],
    made_up: Container[str],
    unexpected_members: Mapping[str, Member],
    evidence: Mapping[str, Evidence] = _NO_EVIDENCE,
    makeup_evidence: Mapping[str, Evidence] = _NO_EVIDENCE,
) -> Iterator[AttendanceRecord]:
    """Yield one record per expected member and per member checked in unexpectedly, by code.

    One merge-join pass over `expected` (sorted by code, no repeats) and `events` (sorted by
    member then ts; ties must be broken the same way every time, e.g. by event id), so memory
    stays constant however large the session. Codes compare as Python strings (code point
    order): the store must sort the same way (`COLLATE "C"` in PostgreSQL); a stream out of
    order raises ValueError rather than giving wrong records.

    `made_up` holds the members present at any make-up session of this one;
    `unexpected_members` names the members who checked in without being expected.
    `evidence` is what members handed in for this session and `makeup_evidence` what they
    handed in at its make-up sessions; a member's evidence is looked up when their record is
    made, before the next expected member is taken, so `evidence` may hold only the members
    around the merge's position (`domain.attendance.EvidenceWindow`). A member confirmed as
    `self_study` with no check-in is `present` (form self_study, no site); one so confirmed
    at a make-up session is `made_up`.
    Every attending member (`present`, `late`, `made_up`) is `completed` once the evidence
    `meets` the session's requirements.
    """
    starts_at, ends_at = session.starts_at, session.ends_at
    late_at = starts_at + timedelta(minutes=session.late_after_minutes)
    self_study = frozenset(site_id for site_id, site in sites.items() if site.kind == "self_study")
    requires = session.requires
    nothing_required = requires == Requirements()
    # Looked up again for every member: the caller may move the evidence along with the
    # expected members (EvidenceWindow), so an empty mapping now may not be empty later.
    find_evidence = evidence.get

    def checked_in(member: Member, folded: _Folded, bits: int) -> AttendanceRecord:
        _code, first_in, site_id, last_out, minutes, folded_bits = folded
        site = sites[site_id]
        found = find_evidence(member.code)
        return AttendanceRecord(
            member.code,
            member.full_name,
            member.unit,
            "present" if folded_bits & _CONFIRMED or first_in <= late_at else "late",
            site.kind,
            site_id,
            site.name,
            first_in,
            last_out,
            minutes,
            _FLAG_SETS[(folded_bits | bits) & _ALL_FLAGS],
            excuses.get(member.code),
            found is not None and found.reflection,
            None if found is None else found.quiz_score,
            nothing_required or meets(requires, found),
        )

    def not_checked_in(member: Member) -> AttendanceRecord:
        code = member.code
        excuse = excuses.get(code)
        found = find_evidence(code)
        if found is not None and found.self_study:
            return AttendanceRecord(
                code,
                member.full_name,
                member.unit,
                "present",
                "self_study",
                None,
                None,
                None,
                None,
                0,
                (),
                excuse,
                found.reflection,
                found.quiz_score,
                nothing_required or meets(requires, found),
            )
        later = makeup_evidence.get(code) if makeup_evidence else None
        if code in made_up or (later is not None and later.self_study):
            return AttendanceRecord(
                code,
                member.full_name,
                member.unit,
                "made_up",
                None,
                None,
                None,
                None,
                None,
                0,
                (),
                excuse,
                later is not None and later.reflection,
                None if later is None else later.quiz_score,
                nothing_required or meets(requires, later),
            )
        status: Status = "excused" if excuse is not None else "absent"
        return AttendanceRecord(
            code,
            member.full_name,
            member.unit,
            status,
            None,
            None,
            None,
            None,
            None,
            0,
            (),
            excuse,
            found is not None and found.reflection,
            None if found is None else found.quiz_score,
            False,
        )

    def unexpected(code: str) -> Member:
        member = unexpected_members.get(code)
        if member is None:
            raise ValueError(
                f"member {code!r} checked in unexpectedly but is not in unexpected_members"
            )
        return member

    members = _in_code_order(expected)
    member = next(members, None)
    for folded in _fold_events(events, starts_at, ends_at, self_study):
        code = folded[0]
        while member is not None and member.code < code:
            yield not_checked_in(member)
            member = next(members, None)
        if member is not None and member.code == code:
            yield checked_in(member, folded, 0)
            member = next(members, None)
        else:
            yield checked_in(unexpected(code), folded, _NOT_IN_AUDIENCE)
    while member is not None:
        yield not_checked_in(member)
        member = next(members, None)


def in_scope(
    records: Iterable[AttendanceRecord], units: Container[str]
) -> Iterator[AttendanceRecord]:
    """The records of members whose unit is in `units` (a user's scope): what a scoped user
    sees and counts. A filter on the stream, so the pass keeps its constant memory."""
    for record in records:
        if record.unit in units:
            yield record


def _in_code_order(members: Iterable[Member]) -> Iterator[Member]:
    """Pass the members through, refusing a repeat or a step back that would break the join."""
    previous: str | None = None
    for member in members:
        if previous is not None and member.code <= previous:
            raise ValueError(
                f"expected members are not sorted by code or repeat: {member.code!r} "
                f"after {previous!r}"
            )
        previous = member.code
        yield member


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts of the expected members by status, the participation rate the province watches,
    and how many completed the session (attended and met its requirements)."""

    expected: int = 0
    present: int = 0
    late: int = 0
    excused: int = 0
    made_up: int = 0
    absent: int = 0
    rate: float = 0.0
    completed: int = 0

    @classmethod
    def from_counts(cls, counts: Sequence[int]) -> Summary:
        """Build from [present, late, excused, made_up, absent] in STATUSES order, then
        optionally the completed count."""
        present, late, excused, made_up, absent = counts[:5]
        completed = counts[5] if len(counts) > 5 else 0
        expected = present + late + excused + made_up + absent
        rate = round((present + late + made_up) / expected, 4) if expected else 0.0
        return cls(expected, present, late, excused, made_up, absent, rate, completed)

    def to_json(self) -> dict[str, Any]:
        """The contract's SUMMARY."""
        return {
            "expected": self.expected,
            "present": self.present,
            "late": self.late,
            "excused": self.excused,
            "made_up": self.made_up,
            "absent": self.absent,
            "rate": self.rate,
            "completed": self.completed,
        }


_STATUS_INDEX = {status: index for index, status in enumerate(STATUSES)}
#: Where a tally keeps the completed count, after one count per status.
_COMPLETED = len(STATUSES)
_TALLY_SIZE = len(STATUSES) + 1


class SummaryTally:
    """Counts records as they stream past, for the total and for every unit in the audience.

    Lets an export write the records and then the summaries in one pass over `reconcile`.
    Units are walked up from each record's unit once and the in-audience chain is remembered,
    so each record costs O(depth). `only` (a user's scope) keeps the per-unit summary to the
    units in it; the records themselves are filtered before they reach the tally (`in_scope`).
    """

    def __init__(
        self,
        units: Mapping[str, Unit] | None = None,
        roots: Iterable[str] = (),
        only: Container[str] | None = None,
    ) -> None:
        self._units: Mapping[str, Unit] = units if units is not None else {}
        self._total = [0] * _TALLY_SIZE
        order = depth_first(self._units, roots)
        self._order = order if only is None else [unit for unit in order if unit.code in only]
        self._counts = {unit.code: [0] * _TALLY_SIZE for unit in self._order}
        self._chains: dict[str, tuple[list[int], ...]] = {}

    def add(self, record: AttendanceRecord) -> None:
        """Count one record; records not in the audience (`not_in_audience`) are not counted."""
        if record.flags and "not_in_audience" in record.flags:
            return
        index = _STATUS_INDEX[record.status]
        self._total[index] += 1
        chain = self._chains.get(record.unit)
        if chain is None:
            chain = self._chains[record.unit] = self._chain(record.unit)
        for counts in chain:
            counts[index] += 1
        if record.completed:
            self._total[_COMPLETED] += 1
            for counts in chain:
                counts[_COMPLETED] += 1

    def total(self) -> Summary:
        """The summary over every expected member, in the audience units or not."""
        return Summary.from_counts(self._total)

    def by_unit(self) -> list[tuple[Unit, Summary]]:
        """Every unit in the audience subtrees, depth-first, each counting its whole subtree."""
        return [(unit, Summary.from_counts(self._counts[unit.code])) for unit in self._order]

    def _chain(self, code: str) -> tuple[list[int], ...]:
        chain = []
        seen = set()
        unit = self._units.get(code)
        while unit is not None:
            if unit.code in seen:
                raise ValueError(f"unit {unit.code!r} is its own ancestor")
            seen.add(unit.code)
            counts = self._counts.get(unit.code)
            if counts is not None:
                chain.append(counts)
            unit = self._units.get(unit.parent) if unit.parent is not None else None
        return tuple(chain)


def depth_first(units: Mapping[str, Unit], roots: Iterable[str]) -> list[Unit]:
    """The units of the roots' subtrees, depth-first, children by code, each unit once: the
    order of every per-unit list (the summary, the yearly report)."""
    children: dict[str, list[Unit]] = {}
    for unit in units.values():
        if unit.parent is not None:
            children.setdefault(unit.parent, []).append(unit)
    for siblings in children.values():
        siblings.sort(key=lambda unit: unit.code)
    order: list[Unit] = []
    seen: set[str] = set()
    for root in roots:
        top = units.get(root)
        if top is None or top.code in seen:
            continue
        stack = [top]
        while stack:
            unit = stack.pop()
            if unit.code in seen:
                continue
            seen.add(unit.code)
            order.append(unit)
            stack.extend(reversed(children.get(unit.code, ())))
    return order


def summarize(records: Iterable[AttendanceRecord]) -> Summary:
    """The session's SUMMARY over the expected members (not the `not_in_audience` records)."""
    tally = SummaryTally()
    for record in records:
        tally.add(record)
    return tally.total()


def summarize_by_unit(
    records: Iterable[AttendanceRecord], units: Mapping[str, Unit], roots: Iterable[str]
) -> list[tuple[Unit, Summary]]:
    """A SUMMARY for every unit in the subtrees of `roots`, each counting its whole subtree.

    Units come depth-first from the roots, children by code. A record whose unit lies outside
    the subtrees counts in no unit (only in `summarize`).
    """
    tally = SummaryTally(units, roots)
    for record in records:
        tally.add(record)
    return tally.by_unit()
