"""The decision for each incoming event: accepted, duplicate or rejected, and why.

`parse_event` turns one JSON object from a site into an `Incoming` or a rejection;
`decide_batch` takes a group of them with the facts the store read in the same
transaction, and returns one `Outcome` per event plus what to write. No I/O here: the
store reads the facts, calls this, and writes what it says.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from streamsvc.domain.models import Event, Member, Session, Site
from streamsvc.domain.timefmt import format_ts, parse_ts

__all__ = [
    "CLOCK_SKEW",
    "EARLY_WINDOW",
    "MAX_BATCH",
    "REASONS",
    "Facts",
    "Incoming",
    "Outcome",
    "Presence",
    "TargetInfo",
    "decide_batch",
    "first_presence",
    "first_presence_by_session",
    "parse_event",
    "settle_inserted",
]

#: Check-ins open this long before `starts_at`.
EARLY_WINDOW = timedelta(hours=1)
#: A device clock may run this far ahead of the server's before its `ts` is refused.
CLOCK_SKEW = timedelta(minutes=10)
MAX_BATCH = 1000
MAX_GUESTS = 1_000_000
MAX_ID_LENGTH = 128

REASONS = ("unknown_member", "invalid", "session_closed", "ts_out_of_window", "unknown_target")
EVENT_TYPES = ("checkin", "checkout", "guests", "void")

# A time's text and a text's time, remembered (pure functions, so never stale): at thousands
# of check-ins a second most events share their second with many others, and parsing or
# formatting it cost more than the rest of an event's answer (py-spy, bench/checkin a).
_ts_text = lru_cache(maxsize=4096)(format_ts)
_ts_of = lru_cache(maxsize=4096)(parse_ts)


@dataclass(slots=True)
class Incoming:
    """One well-formed event, not yet decided. Made once per event on the check-in path and
    never changed; not frozen because a frozen dataclass takes three times as long to make."""

    id: str
    type: str
    ts: datetime | None = None
    member: str | None = None
    count: int | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Presence:
    """Where and when a member was first (non-voided) checked in at this session."""

    site_id: int
    site_name: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What a void may take back: a stored event."""

    id: str
    session_id: int
    site_id: int
    type: str
    member: str | None
    voided: bool


@dataclass(slots=True)
class Outcome:
    id: str | None
    result: str
    reason: str | None = None
    member: Member | None = None
    already_present: Presence | None = None
    unit_name: str | None = None  # of the member's unit, for the coordinator's screen

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "result": self.result}
        if self.reason is not None:
            out["reason"] = self.reason
        m = self.member
        if m is not None:
            if self.unit_name is None:
                out["member"] = {"code": m.code, "full_name": m.full_name, "unit": m.unit}
            else:
                out["member"] = {
                    "code": m.code,
                    "full_name": m.full_name,
                    "unit": m.unit,
                    "unit_name": self.unit_name,
                }
        if self.already_present is not None:
            p = self.already_present
            out["already_present"] = {
                "site": p.site_id,
                "site_name": p.site_name,
                "ts": _ts_text(p.ts),
            }
        return out


@dataclass(slots=True)
class Facts:
    """What the store read for a batch, in the same transaction it will write in."""

    sessions: Mapping[int, Session]
    members: Mapping[str, Member]
    stored_ids: set[str]
    presence: dict[tuple[int, str], Presence]
    targets: dict[str, TargetInfo]
    site_names: Mapping[int, str] = field(default_factory=dict)
    unit_names: Mapping[str, str] = field(default_factory=dict)


def _reject(event_id: str | None, reason: str) -> Outcome:
    return Outcome(event_id, "rejected", reason)


def parse_event(raw: object) -> Incoming | Outcome:
    """Validate one event object; a malformed one becomes a `rejected/invalid` outcome."""
    if not isinstance(raw, dict):
        return _reject(None, "invalid")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_ID_LENGTH:
        return _reject(event_id if isinstance(event_id, str) else None, "invalid")
    # A NUL cannot be stored in a PostgreSQL text column: let through, it would fail the
    # whole group commit (every device's events in it) and come back forever as a resend.
    if "\x00" in event_id:
        return _reject(event_id, "invalid")
    kind = raw.get("type")
    if kind == "void":
        target = raw.get("target")
        if not isinstance(target, str) or not 0 < len(target) <= MAX_ID_LENGTH or "\x00" in target:
            return _reject(event_id, "invalid")
        return Incoming(event_id, "void", target=target)
    if kind not in EVENT_TYPES:
        return _reject(event_id, "invalid")
    text = raw.get("ts")
    ts = _ts_of(text) if type(text) is str else None
    if ts is None:
        return _reject(event_id, "invalid")
    if kind == "guests":
        count = raw.get("count")
        if type(count) is not int or not 0 <= count <= MAX_GUESTS:
            return _reject(event_id, "invalid")
        return Incoming(event_id, "guests", ts=ts, count=count)
    member = raw.get("member")
    if not isinstance(member, str) or not 0 < len(member.strip()) <= 64 or "\x00" in member:
        return _reject(event_id, "invalid")
    return Incoming(event_id, kind, ts=ts, member=member.strip())


def _window_reason(session: Session, ts: datetime, now: datetime) -> tuple[str | None, bool]:
    """(reason to reject, late_upload) for an event seen at `ts` and arriving `now`."""
    if ts < session.starts_at - EARLY_WINDOW:
        return "ts_out_of_window", False
    if session.is_open:
        if ts > now + CLOCK_SKEW:
            return "ts_out_of_window", False
        return None, False
    closed_at = session.closed_at or now
    if ts > closed_at:
        return "session_closed", False
    return None, True


def decide_batch(
    items: Iterable[tuple[Session | int, Site, Incoming]],
    facts: Facts,
    now: datetime,
) -> tuple[list[Outcome], list[Event], list[str]]:
    """Decide a group of events in arrival order.

    Returns the outcomes (one per item, in order), the events to insert and the ids of
    check-ins to mark voided. Later items see the effect of earlier ones: a second use of
    an id is a duplicate, a void may target a check-in earlier in the group, and a
    check-in after another of the same member answers `already_present`.
    """
    items = list(items)
    # Only a void later in this group can target a check-in made in it: without one, there
    # is no need to remember each new check-in as a target (a large share of the work).
    track_targets = any(incoming.type == "void" for _, _, incoming in items)
    outcomes: list[Outcome] = []
    rows: list[Event] = []
    voids: list[str] = []
    seen = facts.stored_ids
    presence = facts.presence
    targets = facts.targets
    members = facts.members
    unit_names = facts.unit_names
    # Check-ins and checkouts, nearly every event, are decided inline below with each
    # session's window worked out once per group (this loop runs for every event).
    windows: dict[int, tuple[datetime, datetime, str, bool]] = {}
    for session_ref, site, incoming in items:
        session = facts.sessions.get(session_ref) if isinstance(session_ref, int) else session_ref
        event_id = incoming.id
        if event_id in seen:
            outcomes.append(Outcome(event_id, "duplicate"))
            continue
        if session is None:
            outcomes.append(_reject(event_id, "session_closed"))
            continue
        kind = incoming.type
        if kind == "checkin" or kind == "checkout":
            window = windows.get(session.id)
            if window is None:
                window = windows[session.id] = _window(session, now)
            opens, closes, too_late, late = window
            ts: datetime = incoming.ts  # type: ignore[assignment]
            if ts < opens or ts > closes:
                outcomes.append(_reject(event_id, "ts_out_of_window" if ts < opens else too_late))
                continue
            member = members.get(incoming.member or "")
            if member is None:
                outcomes.append(_reject(event_id, "unknown_member"))
                continue
            code = member.code
            key = (session.id, code)
            outcome = Outcome(event_id, "accepted", None, member, None, unit_names.get(member.unit))
            outcomes.append(outcome)
            seen.add(event_id)
            rows.append(
                Event(event_id, session.id, site.id, kind, ts, now, code, None, None, False, late)
            )
            if kind == "checkin":
                outcome.already_present = presence.get(key)
                if track_targets:
                    targets[event_id] = TargetInfo(event_id, session.id, site.id, kind, code, False)
                if key not in presence:
                    presence[key] = Presence(site.id, site.name, ts)
            continue
        outcome, event = _decide_one(session, site, incoming, facts, now)
        outcomes.append(outcome)
        if event is None:
            continue
        seen.add(event.id)
        rows.append(event)
        if event.type == "void":
            target = targets[event.target]  # type: ignore[index]
            if not target.voided:
                voids.append(target.id)
                targets[target.id] = TargetInfo(
                    target.id, target.session_id, target.site_id, target.type, target.member, True
                )
                key = (session.id, target.member or "")
                held = presence.get(key)
                if held is not None and held.site_id == target.site_id:
                    # The presence shown may have come from the voided check-in; drop it
                    # rather than show a wrong site. The store's next read is exact.
                    presence.pop(key, None)
    return outcomes, rows, voids


def _window(session: Session, now: datetime) -> tuple[datetime, datetime, str, bool]:
    """(opens, closes, the reason for a time after `closes`, late_upload): the times
    `_window_reason` accepts, for deciding many events of one session at once."""
    opens = session.starts_at - EARLY_WINDOW
    if session.is_open:
        return opens, now + CLOCK_SKEW, "ts_out_of_window", False
    return opens, session.closed_at or now, "session_closed", True


def _decide_one(
    session: Session, site: Site, incoming: Incoming, facts: Facts, now: datetime
) -> tuple[Outcome, Event | None]:
    if incoming.type == "void":
        target = facts.targets.get(incoming.target or "")
        if target is None or target.type != "checkin" or target.site_id != site.id:
            return _reject(incoming.id, "unknown_target"), None
        late = not session.is_open
        event = Event(
            incoming.id,
            session.id,
            site.id,
            "void",
            None,
            now,
            target=target.id,
            late_upload=late,
        )
        return Outcome(incoming.id, "accepted"), event

    ts = incoming.ts
    assert ts is not None
    reason, late = _window_reason(session, ts, now)
    if reason is not None:
        return _reject(incoming.id, reason), None

    if incoming.type == "guests":
        event = Event(
            incoming.id,
            session.id,
            site.id,
            "guests",
            ts,
            now,
            count=incoming.count,
            late_upload=late,
        )
        return Outcome(incoming.id, "accepted"), event

    member = facts.members.get(incoming.member or "")
    if member is None:
        return _reject(incoming.id, "unknown_member"), None
    event = Event(
        incoming.id,
        session.id,
        site.id,
        incoming.type,
        ts,
        now,
        member=member.code,
        late_upload=late,
    )
    outcome = Outcome(
        incoming.id, "accepted", member=member, unit_name=facts.unit_names.get(member.unit)
    )
    if incoming.type == "checkin":
        outcome.already_present = facts.presence.get((session.id, member.code))
    return outcome, event


def first_presence(
    checkins: Sequence[tuple[str, int, datetime]], site_names: Mapping[int, str]
) -> dict[str, Presence]:
    """Earliest check-in per member from (member, site_id, ts) rows read by a store."""
    found = first_presence_by_session(((0, m, s, ts) for m, s, ts in checkins), site_names)
    return {member: p for (_, member), p in found.items()}


def first_presence_by_session(
    checkins: Iterable[tuple[int, str, int, datetime]], site_names: Mapping[int, str]
) -> dict[tuple[int, str], Presence]:
    """Earliest check-in per (session, member) from (session_id, member, site_id, ts) rows."""
    out: dict[tuple[int, str], Presence] = {}
    for session_id, member, site_id, ts in checkins:
        key = (session_id, member)
        held = out.get(key)
        if held is None or ts < held.ts:
            out[key] = Presence(site_id, site_names.get(site_id, ""), ts)
    return out


def settle_inserted(
    outcomes: list[Outcome], events: list[Event], inserted: Collection[str]
) -> tuple[list[Outcome], list[Event]]:
    """What a group's answers are once the store has inserted what `decide_batch` said.

    Another instance may store one of the ids between this one's read of the facts and
    its insert (the insert then skips it, `ON CONFLICT DO NOTHING`). That event was stored
    once, by the other instance: it answers `duplicate`, as a resend would, and is not
    one of the events this group stored (so it is not counted twice live).
    """
    if len(inserted) == len(events):
        return outcomes, events
    lost = {e.id for e in events if e.id not in inserted}
    settled = [
        Outcome(o.id, "duplicate") if o.id in lost and o.result == "accepted" else o
        for o in outcomes
    ]
    return settled, [e for e in events if e.id not in lost]
