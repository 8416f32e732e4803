"""Check-in decisions: `parse_event`, `decide_batch` and `first_presence`, case by case.

The contract's "Live check-in" section, pinned as tables: what a site may send, and what
each event gets back (accepted, duplicate, or rejected with a reason) for a given state of
the store and a given `now`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streamsvc.domain.checkin import (
    CLOCK_SKEW,
    EARLY_WINDOW,
    Facts,
    Incoming,
    Outcome,
    Presence,
    TargetInfo,
    decide_batch,
    first_presence,
    first_presence_by_session,
    parse_event,
)
from streamsvc.domain.models import Event, Member, Session, Site

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)  # 08:00 in Bắc Cạn
END = START + timedelta(hours=2)
TS = "2026-05-22T08:05:00+07:00"  # START + 5 minutes, as a coordinator's phone writes it
AT_TS = START + timedelta(minutes=5)
SID = 7
OPEN = Session(SID, "Nghị quyết Trung ương 6 khóa XII", START, END, ("BT",))
CLOSED_AT = END + timedelta(minutes=3)
CLOSED = replace(OPEN, state="closed", closed_at=CLOSED_AT)
HALL = Site(1, SID, "Hội trường Huyện ủy", "hall")
BRIDGE = Site(2, SID, "Điểm cầu xã Quân Hà", "bridge")
M1 = Member("M1", "Nguyễn Văn An", "C1")
M2 = Member("M2", "Hoàng Thị Bình", "C2")
UNIT_NAMES = {"C1": "Chi bộ Quân Hà", "C2": "Chi bộ Nà Lạng"}
NOW = START + timedelta(minutes=20)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


# -- parse_event --------------------------------------------------------------------------


def raw(kind: str = "checkin", **fields: Any) -> dict[str, Any]:
    """A well-formed event of `kind`, with `fields` replaced (None removes a field)."""
    base: dict[str, Any] = {"id": "e1", "type": kind}
    if kind == "void":
        base["target"] = "e0"
    else:
        base["ts"] = TS
        if kind == "guests":
            base["count"] = 12
        else:
            base["member"] = "M1"
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def invalid(event_id: str | None = "e1") -> Outcome:
    return Outcome(event_id, "rejected", "invalid")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (raw(), Incoming("e1", "checkin", AT_TS, member="M1")),
        (raw("checkout"), Incoming("e1", "checkout", AT_TS, member="M1")),
        (raw("guests"), Incoming("e1", "guests", AT_TS, count=12)),
        (raw("void"), Incoming("e1", "void", target="e0")),
        # ts: any offset, read as UTC; a `Z`; fractions of a second kept
        (raw(ts="2026-05-22T01:05:00Z"), Incoming("e1", "checkin", AT_TS, member="M1")),
        (raw(ts="2026-05-21T20:05:00-05:00"), Incoming("e1", "checkin", AT_TS, member="M1")),
        (
            raw(ts="2026-05-22T01:05:00.250000+00:00"),
            Incoming("e1", "checkin", AT_TS + timedelta(milliseconds=250), member="M1"),
        ),
        # ids up to 128 characters; a void's target likewise
        (raw(id="x" * 128), Incoming("x" * 128, "checkin", AT_TS, member="M1")),
        (raw("void", target="t" * 128), Incoming("e1", "void", target="t" * 128)),
        # the member code is trimmed, and may be 64 characters once trimmed
        (raw(member="  M1\t"), Incoming("e1", "checkin", AT_TS, member="M1")),
        (raw(member=" " + "9" * 64 + " "), Incoming("e1", "checkin", AT_TS, member="9" * 64)),
        # guests from none to a million
        (raw("guests", count=0), Incoming("e1", "guests", AT_TS, count=0)),
        (raw("guests", count=1_000_000), Incoming("e1", "guests", AT_TS, count=1_000_000)),
        # what a type does not use is ignored: a void needs no ts, guests no member
        (raw("void", ts="not a time", member=""), Incoming("e1", "void", target="e0")),
        (raw("guests", member=""), Incoming("e1", "guests", AT_TS, count=12)),
    ],
)
def test_parse_event_accepts(event: dict[str, Any], expected: Incoming) -> None:
    assert parse_event(event) == expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        # not an object: nothing to answer by id
        (None, invalid(None)),
        ([raw()], invalid(None)),
        ("checkin", invalid(None)),
        (42, invalid(None)),
        # id: missing, not a string (answered without an id), empty or too long (echoed)
        (raw(id=None), invalid(None)),
        (raw(id=42), invalid(None)),
        (raw(id=["e1"]), invalid(None)),
        (raw(id=""), invalid("")),
        (raw(id="x" * 129), invalid("x" * 129)),
        # a NUL anywhere in a stored text (PostgreSQL refuses it, failing the whole group)
        (raw(id="e\x001"), invalid("e\x001")),
        # type: missing, unknown, or a frame type rather than an event
        (raw(type=None), invalid()),
        (raw(type="checkin2"), invalid()),
        (raw(type="batch"), invalid()),
        (raw(type="CHECKIN"), invalid()),
        # ts: missing, not a string, no offset, not a time, too short or too long
        (raw(ts=None), invalid()),
        (raw(ts=1779411900), invalid()),
        (raw(ts="2026-05-22T08:05:00"), invalid()),
        (raw(ts="2026-05-22T08:05:00.000000"), invalid()),
        (raw(ts="2026-05-22"), invalid()),
        (raw(ts="2026-13-22T08:05:00+07:00"), invalid()),
        (raw(ts="yesterday at eight o'clock"), invalid()),
        (raw(ts="2026-05-22T08:05:00.000000000000000+07:00"), invalid()),
        (raw("checkout", ts=None), invalid()),
        (raw("guests", ts="2026-05-22T08:05:00"), invalid()),
        # member: missing, not a string, blank, or over 64 characters
        (raw(member=None), invalid()),
        (raw(member=10000001), invalid()),
        (raw(member=""), invalid()),
        (raw(member="   "), invalid()),
        (raw(member="9" * 65), invalid()),
        (raw("checkout", member=None), invalid()),
        (raw(member="1000\x000001"), invalid()),
        # guests: a whole number from 0 to 1,000,000; not a bool, float or string
        (raw("guests", count=None), invalid()),
        (raw("guests", count=-1), invalid()),
        (raw("guests", count=1_000_001), invalid()),
        (raw("guests", count=True), invalid()),
        (raw("guests", count=12.0), invalid()),
        (raw("guests", count="12"), invalid()),
        # void: the target must be an event id
        (raw("void", target=None), invalid()),
        (raw("void", target=""), invalid()),
        (raw("void", target="t" * 129), invalid()),
        (raw("void", target=7), invalid()),
        (raw("void", target="e\x001"), invalid()),
    ],
)
def test_parse_event_rejects_as_invalid(event: object, expected: Outcome) -> None:
    assert parse_event(event) == expected


# -- decide_batch -------------------------------------------------------------------------


def facts(
    *,
    session: Session = OPEN,
    stored: set[str] | None = None,
    presence: dict[tuple[int, str], Presence] | None = None,
    targets: dict[str, TargetInfo] | None = None,
) -> Facts:
    """What a store would have read: the session, members M1 and M2, and the given state."""
    return Facts(
        {session.id: session},
        {M1.code: M1, M2.code: M2},
        set(stored or ()),
        dict(presence or {}),
        dict(targets or {}),
        unit_names=UNIT_NAMES,
    )


def checkin(event_id: str, member: str = "M1", ts: datetime = AT_TS) -> Incoming:
    return Incoming(event_id, "checkin", ts, member=member)


def void(event_id: str, target: str) -> Incoming:
    return Incoming(event_id, "void", target=target)


def decide(
    events: list[Incoming], known: Facts | None = None, now: datetime = NOW, site: Site = HALL
) -> tuple[list[Outcome], list[Event], list[str]]:
    return decide_batch([(SID, site, e) for e in events], known or facts(), now)


def summary(outcomes: list[Outcome]) -> list[tuple[str | None, str, str | None]]:
    return [(o.id, o.result, o.reason) for o in outcomes]


def test_an_accepted_checkin_names_the_member_and_is_to_be_stored() -> None:
    outcomes, rows, voids = decide([checkin("e1")])
    assert outcomes == [Outcome("e1", "accepted", member=M1, unit_name="Chi bộ Quân Hà")]
    assert rows == [Event("e1", SID, HALL.id, "checkin", AT_TS, NOW, member="M1")]
    assert voids == []


@pytest.mark.parametrize(
    ("incoming", "row"),
    [
        (
            Incoming("e1", "checkout", AT_TS, member="M2"),
            Event("e1", SID, HALL.id, "checkout", AT_TS, NOW, member="M2"),
        ),
        (
            Incoming("e1", "guests", AT_TS, count=40),
            Event("e1", SID, HALL.id, "guests", AT_TS, NOW, count=40),
        ),
    ],
)
def test_checkouts_and_guests_are_stored_as_sent(incoming: Incoming, row: Event) -> None:
    outcomes, rows, _ = decide([incoming])
    assert [o.result for o in outcomes] == ["accepted"]
    assert outcomes[0].already_present is None
    assert rows == [row]


SEC, HOUR = timedelta(seconds=1), timedelta(hours=1)
UNCLOSED = replace(CLOSED, closed_at=None)


def sent(kind: str, ts: datetime) -> Incoming:
    if kind == "guests":
        return Incoming("e1", kind, ts, count=3)
    return Incoming("e1", kind, ts, member="M1")


@pytest.mark.parametrize(
    ("session", "ts", "now", "decision", "late_upload"),
    [
        # open: from one hour before starts_at, up to the clock skew past now
        (OPEN, START - EARLY_WINDOW, NOW, "accepted", False),
        (OPEN, START - EARLY_WINDOW - SEC, NOW, "ts_out_of_window", None),
        (OPEN, NOW + CLOCK_SKEW, NOW, "accepted", False),
        (OPEN, NOW + CLOCK_SKEW + SEC, NOW, "ts_out_of_window", None),
        # an open session still takes check-ins after ends_at: only closing stops them
        (OPEN, END + HOUR, END + HOUR, "accepted", False),
        # closed: events seen before the close and sent later are accepted, flagged late
        (CLOSED, CLOSED_AT - 30 * SEC, CLOSED_AT + 24 * HOUR, "accepted", True),
        (CLOSED, CLOSED_AT, CLOSED_AT + HOUR, "accepted", True),
        (CLOSED, START - EARLY_WINDOW, CLOSED_AT + HOUR, "accepted", True),
        (CLOSED, CLOSED_AT + SEC, CLOSED_AT + HOUR, "session_closed", None),
        (CLOSED, START - EARLY_WINDOW - SEC, CLOSED_AT, "ts_out_of_window", None),
        # a closed session read without its closing time counts as closed now
        (UNCLOSED, NOW, NOW, "accepted", True),
        (UNCLOSED, NOW + SEC, NOW, "session_closed", None),
    ],
)
@pytest.mark.parametrize("kind", ["checkin", "checkout", "guests"])
def test_window(
    session: Session,
    ts: datetime,
    now: datetime,
    decision: str,
    late_upload: bool | None,
    kind: str,
) -> None:
    outcomes, rows, _ = decide([sent(kind, ts)], facts(session=session), now)
    assert (outcomes[0].reason or outcomes[0].result) == decision
    assert [(r.ts, r.received_at, r.late_upload) for r in rows] == (
        [] if late_upload is None else [(ts, now, late_upload)]
    )


@pytest.mark.parametrize(
    ("events", "known", "expected"),
    [
        # an id stored before is a duplicate, whatever the event would be now
        ([checkin("e1")], facts(stored={"e1"}), [("e1", "duplicate", None)]),
        ([checkin("e1", "M404")], facts(stored={"e1"}), [("e1", "duplicate", None)]),
        (
            [checkin("e1", ts=CLOSED_AT + timedelta(hours=1))],
            facts(session=CLOSED, stored={"e1"}),
            [("e1", "duplicate", None)],
        ),
        # the same id twice in one group: stored once
        (
            [checkin("e1"), checkin("e1"), checkin("e1", "M2")],
            None,
            [("e1", "accepted", None), ("e1", "duplicate", None), ("e1", "duplicate", None)],
        ),
        # a rejected event is not stored, so its id may come again and be decided afresh
        (
            [checkin("e1", "M404"), checkin("e1")],
            None,
            [("e1", "rejected", "unknown_member"), ("e1", "accepted", None)],
        ),
        # unknown members, for check-ins and checkouts
        ([checkin("e1", "M404")], None, [("e1", "rejected", "unknown_member")]),
        (
            [Incoming("e1", "checkout", AT_TS, member="m1")],
            None,
            [("e1", "rejected", "unknown_member")],
        ),
        # one bad event does not affect the others in the group
        (
            [
                checkin("e1"),
                checkin("e2", "M404"),
                checkin("e3", ts=NOW + timedelta(hours=1)),
                checkin("e4", "M2"),
            ],
            None,
            [
                ("e1", "accepted", None),
                ("e2", "rejected", "unknown_member"),
                ("e3", "rejected", "ts_out_of_window"),
                ("e4", "accepted", None),
            ],
        ),
    ],
)
def test_results(
    events: list[Incoming], known: Facts | None, expected: list[tuple[str, str, str | None]]
) -> None:
    outcomes, rows, _ = decide(events, known)
    assert summary(outcomes) == expected
    assert [row.id for row in rows] == [o.id for o in outcomes if o.result == "accepted"]


def test_a_session_the_store_did_not_find_rejects_as_closed() -> None:
    outcomes, rows, _ = decide_batch([(SID + 1, HALL, checkin("e1"))], facts(), NOW)
    assert (summary(outcomes), rows) == ([("e1", "rejected", "session_closed")], [])


def test_a_session_may_be_handed_in_directly() -> None:
    outcomes, rows, _ = decide_batch([(CLOSED, HALL, checkin("e1"))], facts(), NOW)
    assert [(o.result, r.late_upload) for o, r in zip(outcomes, rows, strict=True)] == [
        ("accepted", True)
    ]


def test_a_member_already_present_is_accepted_with_where_and_when() -> None:
    earlier = Presence(BRIDGE.id, BRIDGE.name, at(-10))
    outcomes, rows, _ = decide([checkin("e1")], facts(presence={(SID, "M1"): earlier}))
    assert [(o.result, o.already_present) for o in outcomes] == [("accepted", earlier)]
    assert [row.id for row in rows] == ["e1"]


def test_presence_at_another_session_does_not_count() -> None:
    elsewhere = {(SID + 1, "M1"): Presence(9, "Elsewhere", at(-10))}
    outcomes, _, _ = decide([checkin("e1")], facts(presence=elsewhere))
    assert outcomes[0].already_present is None


def test_the_first_checkin_in_a_group_is_where_the_later_ones_were_already_present() -> None:
    events = [checkin("e1", ts=at(1)), checkin("e2", ts=at(2)), checkin("e3", "M2")]
    events.append(checkin("e4", ts=at(3)))
    outcomes, rows, _ = decide(events)
    first = Presence(HALL.id, HALL.name, at(1))
    assert [o.already_present for o in outcomes] == [None, first, None, first]
    assert len(rows) == 4


def test_a_checkout_does_not_answer_already_present() -> None:
    earlier = {(SID, "M1"): Presence(HALL.id, HALL.name, at(-10))}
    checkout = Incoming("e1", "checkout", AT_TS, member="M1")
    outcomes, _, _ = decide([checkout], facts(presence=earlier))
    assert (outcomes[0].result, outcomes[0].already_present) == ("accepted", None)


def stored_checkin(event_id: str, site: Site = HALL, *, voided: bool = False) -> TargetInfo:
    return TargetInfo(event_id, SID, site.id, "checkin", "M1", voided)


@pytest.mark.parametrize(
    ("targets", "target", "result", "voids"),
    [
        ({"t1": stored_checkin("t1")}, "t1", ("accepted", None), ["t1"]),
        # voiding twice is harmless: accepted, nothing more to take back
        ({"t1": stored_checkin("t1", voided=True)}, "t1", ("accepted", None), []),
        ({}, "t404", ("rejected", "unknown_target"), []),
        ({"t1": stored_checkin("t1", BRIDGE)}, "t1", ("rejected", "unknown_target"), []),
        (
            {"t1": TargetInfo("t1", SID, HALL.id, "checkout", "M1", False)},
            "t1",
            ("rejected", "unknown_target"),
            [],
        ),
        (
            {"t1": TargetInfo("t1", SID, HALL.id, "guests", None, False)},
            "t1",
            ("rejected", "unknown_target"),
            [],
        ),
        (
            {"t1": TargetInfo("t1", SID, HALL.id, "void", None, False)},
            "t1",
            ("rejected", "unknown_target"),
            [],
        ),
    ],
)
def test_void_of_a_stored_event(
    targets: dict[str, TargetInfo],
    target: str,
    result: tuple[str, str | None],
    voids: list[str],
) -> None:
    outcomes, rows, taken_back = decide([void("v1", target)], facts(targets=targets))
    assert (outcomes[0].result, outcomes[0].reason) == result
    assert taken_back == voids
    expected_rows = [Event("v1", SID, HALL.id, "void", None, NOW, target=target)]
    assert rows == (expected_rows if result[0] == "accepted" else [])


def test_a_void_after_the_close_is_accepted_as_a_late_upload() -> None:
    known = facts(session=CLOSED, targets={"t1": stored_checkin("t1")})
    outcomes, rows, voids = decide([void("v1", "t1")], known, CLOSED_AT + timedelta(hours=1))
    assert ([o.result for o in outcomes], voids) == (["accepted"], ["t1"])
    assert [(r.type, r.late_upload) for r in rows] == [("void", True)]


def test_a_void_may_take_back_a_checkin_earlier_in_the_same_group() -> None:
    events = [checkin("e1"), void("v1", "e1"), void("v2", "e1"), checkin("e2", ts=at(7))]
    outcomes, rows, voids = decide(events)
    assert summary(outcomes) == [(i, "accepted", None) for i in ("e1", "v1", "v2", "e2")]
    assert voids == ["e1"]
    assert [(r.id, r.type, r.target) for r in rows] == [
        ("e1", "checkin", None),
        ("v1", "void", "e1"),
        ("v2", "void", "e1"),
        ("e2", "checkin", None),
    ]
    # the voided check-in no longer makes the member present
    assert outcomes[3].already_present is None


def test_a_void_before_its_checkin_in_the_group_has_no_target_yet() -> None:
    outcomes, rows, voids = decide([void("v1", "e1"), checkin("e1")])
    assert summary(outcomes) == [("v1", "rejected", "unknown_target"), ("e1", "accepted", None)]
    assert ([r.id for r in rows], voids) == (["e1"], [])


def test_voiding_a_checkin_at_one_site_keeps_presence_from_another() -> None:
    earlier = Presence(BRIDGE.id, BRIDGE.name, at(-10))
    known = facts(presence={(SID, "M1"): earlier}, targets={"t1": stored_checkin("t1")})
    outcomes, _, voids = decide([void("v1", "t1"), checkin("e1")], known)
    assert voids == ["t1"]
    assert outcomes[1].already_present == earlier


def test_outcomes_as_the_ack_sends_them() -> None:
    earlier = Presence(BRIDGE.id, BRIDGE.name, datetime(2026, 5, 22, 0, 55, 30, tzinfo=UTC))
    outcomes, _, _ = decide(
        [checkin("e1"), checkin("e1"), checkin("e2", "M404")],
        facts(presence={(SID, "M1"): earlier}),
    )
    assert [o.to_json() for o in outcomes] == [
        {
            "id": "e1",
            "result": "accepted",
            "member": {
                "code": "M1",
                "full_name": "Nguyễn Văn An",
                "unit": "C1",
                "unit_name": "Chi bộ Quân Hà",
            },
            "already_present": {
                "site": BRIDGE.id,
                "site_name": BRIDGE.name,
                "ts": "2026-05-22T00:55:30Z",
            },
        },
        {"id": "e1", "result": "duplicate"},
        {"id": "e2", "result": "rejected", "reason": "unknown_member"},
    ]


# -- first_presence -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], {}),
        ([("M1", 1, at(5))], {"M1": Presence(1, HALL.name, at(5))}),
        # the earliest check-in wins, in whatever order the store read them
        (
            [("M1", 1, at(5)), ("M1", 2, at(-3)), ("M1", 1, at(0))],
            {"M1": Presence(2, BRIDGE.name, at(-3))},
        ),
        # a tie keeps the first row read
        ([("M1", 2, at(5)), ("M1", 1, at(5))], {"M1": Presence(2, BRIDGE.name, at(5))}),
        (
            [("M2", 2, at(9)), ("M1", 1, at(4)), ("M2", 1, at(8))],
            {"M1": Presence(1, HALL.name, at(4)), "M2": Presence(1, HALL.name, at(8))},
        ),
        # a site whose name was not read is shown without one
        ([("M1", 99, at(1))], {"M1": Presence(99, "", at(1))}),
    ],
)
def test_first_presence(
    rows: list[tuple[str, int, datetime]], expected: dict[str, Presence]
) -> None:
    assert first_presence(rows, {HALL.id: HALL.name, BRIDGE.id: BRIDGE.name}) == expected


def test_first_presence_by_session_keeps_sessions_apart() -> None:
    rows = [(7, "M1", 1, at(5)), (8, "M1", 2, at(1)), (7, "M1", 2, at(3)), (8, "M2", 1, at(9))]
    assert first_presence_by_session(iter(rows), {HALL.id: HALL.name}) == {
        (7, "M1"): Presence(2, "", at(3)),
        (8, "M1"): Presence(2, "", at(1)),
        (8, "M2"): Presence(1, HALL.name, at(9)),
    }
