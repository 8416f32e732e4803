"""Reconciliation: the contract's Attendance rules, case by case and as properties."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsvc.domain.models import Event, Evidence, Member, Requirements, Session, Site, Unit
from streamsvc.domain.reconcile import (
    STATUSES,
    AttendanceRecord,
    Status,
    Summary,
    reconcile,
    summarize,
    summarize_by_unit,
)

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)  # 08:00 in Bắc Cạn
END = START + timedelta(hours=2)
RECEIVED = START
SESSION = Session(
    id=7,
    title="Nghị quyết Trung ương 6 khóa XII",
    starts_at=START,
    ends_at=END,
    audience=("BT",),
    late_after_minutes=15,
    state="closed",
    closed_at=END,
)
HALL, BRIDGE, SELF_STUDY, BROADCAST = 1, 2, 3, 4
SITES = {
    HALL: Site(HALL, 7, "Hội trường Huyện ủy", "hall"),
    BRIDGE: Site(BRIDGE, 7, "Điểm cầu xã Quân Hà", "bridge"),
    SELF_STUDY: Site(SELF_STUDY, 7, "Tự nghiên cứu", "self_study"),
    BROADCAST: Site(BROADCAST, 7, "Nhà văn hóa thôn Nà Lạng", "broadcast"),
}
M1 = Member("M1", "Nguyễn Văn An", "C1")
M2 = Member("M2", "Hoàng Thị Bình", "C1")
M9 = Member("M9", "Đồng Văn Chín", "C3")

_ids = itertools.count()


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def event(
    kind: str, minutes: float, site: int = HALL, member: str | None = "M1", **fields: Any
) -> Event:
    return Event(
        id=f"e{next(_ids):05d}",
        session_id=7,
        site_id=site,
        type=kind,
        ts=at(minutes),
        received_at=RECEIVED,
        member=member,
        **fields,
    )


def checkin(minutes: float, site: int = HALL, member: str = "M1", **fields: Any) -> Event:
    return event("checkin", minutes, site, member, **fields)


def checkout(minutes: float, site: int = HALL, member: str = "M1", **fields: Any) -> Event:
    return event("checkout", minutes, site, member, **fields)


def store_order(events: Iterable[Event]) -> list[Event]:
    """As the store hands events over: member events by (member, ts, id), the rest dropped."""
    return sorted(
        (e for e in events if e.member is not None),
        key=lambda e: (e.member, e.ts, e.id),
    )


def run(
    events: Iterable[Event],
    expected: Iterable[Member] = (M1,),
    excuses: Mapping[str, str] | None = None,
    made_up: Iterable[str] = (),
    unexpected: Mapping[str, Member] | None = None,
) -> list[AttendanceRecord]:
    return list(
        reconcile(
            SESSION,
            SITES,
            expected,
            store_order(events),
            excuses or {},
            frozenset(made_up),
            unexpected if unexpected is not None else {"M9": M9},
        )
    )


def case(
    name: str,
    events: list[Event],
    *,
    excuses: dict[str, str] | None = None,
    made_up: tuple[str, ...] = (),
    **want: Any,
) -> Any:
    """One row of the table: the events of M1 (or of `member`), and the record fields wanted."""
    return pytest.param(events, excuses or {}, made_up, want, id=name)


VOIDED = checkin(-5, voided=True)
HALL_NAME = "Hội trường Huyện ủy"

CASES = [
    case("on_time", [checkin(-10)], status="present", form="hall", site=HALL, site_name=HALL_NAME,
         first_in=at(-10), last_out=None, minutes=120, flags=()),
    case("late_by_one_second", [checkin(15 + 1 / 60)],
         status="late", first_in=at(15 + 1 / 60), minutes=104),
    case("exactly_at_late_threshold", [checkin(15)], status="present", minutes=105),
    case("out_and_back_minutes_add_up", [checkin(-5), checkout(30), checkin(40), checkout(100)],
         status="present", last_out=at(100), minutes=90, flags=("left_early",)),
    case("out_and_back_stays_to_the_end", [checkin(0), checkout(30), checkin(40)],
         last_out=at(30), minutes=110, flags=()),
    case("void_of_the_only_checkin", [VOIDED, event("void", 0, member=None, target=VOIDED.id)],
         status="absent", form=None, site=None, site_name=None, first_in=None, minutes=0, flags=()),
    case("voided_checkin_then_a_real_one", [checkin(-20, voided=True), checkin(20, BRIDGE)],
         status="late", form="bridge", first_in=at(20), flags=()),
    case("second_site_overlap_counted_once",
         [checkin(0), checkin(30, BRIDGE), checkout(60, BRIDGE)],
         status="present", form="hall", minutes=60, flags=("multi_site", "left_early")),
    case("second_site_no_checkout", [checkin(0), checkin(30, BRIDGE)],
         form="hall", minutes=120, flags=("multi_site",)),
    case("second_checkin_same_site_starts_nothing", [checkin(0), checkin(10), checkout(60)],
         minutes=60, flags=("left_early",)),
    case("self_study_confirmed_after_the_session", [checkin(300, SELF_STUDY)],
         status="present", form="self_study", site=SELF_STUDY, site_name="Tự nghiên cứu",
         minutes=0),
    case("late_then_self_study_is_present", [checkin(50, BROADCAST), checkin(200, SELF_STUDY)],
         status="present", form="broadcast", minutes=70, flags=("multi_site",)),
    case("excuse_without_checkin", [], excuses={"M1": "ốm"},
         status="excused", excuse="ốm", form=None),
    case("excuse_then_make_up", [], excuses={"M1": "công tác"}, made_up=("M1",),
         status="made_up", excuse="công tác"),
    case("absent_then_made_up", [], made_up=("M1",), status="made_up", excuse=None),
    case("voided_then_made_up", [VOIDED], made_up=("M1",), status="made_up"),
    case("excused_but_came_anyway", [checkin(5)], excuses={"M1": "ốm"}, made_up=("M1",),
         status="present", excuse="ốm"),
    case("absent", [], status="absent", excuse=None, minutes=0, flags=()),
    case("late_upload", [checkin(0), checkout(50, late_upload=True)],
         flags=("left_early", "late_upload")),
    case("late_upload_of_a_voided_checkin_does_not_count",
         [checkin(0, voided=True, late_upload=True), checkin(1)], flags=()),
    case("left_early", [checkin(0), checkout(90)],
         last_out=at(90), minutes=90, flags=("left_early",)),
    case("checkout_at_the_end_is_not_left_early", [checkin(0), checkout(120)],
         minutes=120, flags=()),
    case("stay_clipped_to_the_session", [checkin(-60), checkout(180)],
         first_in=at(-60), last_out=at(180), minutes=120, flags=()),
    case("stays_wholly_outside_the_session",
         [checkin(-60), checkout(-30), checkin(130), checkout(140)], minutes=0, flags=()),
    case("checkout_before_any_checkin_is_ignored", [checkout(-20), checkin(-10)],
         status="present", last_out=None, minutes=120, flags=()),
    case("checkout_without_checkin_is_ignored", [checkout(50)],
         status="absent", last_out=None, flags=()),
    case("unexpected_member", [checkin(0, member="M9")], member="M9",
         full_name="Đồng Văn Chín", unit="C3", status="present", flags=("not_in_audience",)),
]  # fmt: skip


@pytest.mark.parametrize(("events", "excuses", "made_up", "want"), CASES)
def test_attendance_rules(
    events: list[Event], excuses: dict[str, str], made_up: tuple[str, ...], want: dict[str, Any]
) -> None:
    records = {record.member: record for record in run(events, (M1,), excuses, made_up)}
    record = records[want.get("member", "M1")]
    assert {field: getattr(record, field) for field in want} == want


def test_unexpected_member_gets_a_record_in_code_order() -> None:
    records = run(
        [checkin(0, member="M0"), checkin(5, member="M9"), checkin(1, member="M2")],
        expected=(M1, M2),
        unexpected={"M0": replace(M9, code="M0"), "M9": M9},
    )
    assert [(r.member, r.status, r.flags) for r in records] == [
        ("M0", "present", ("not_in_audience",)),
        ("M1", "absent", ()),
        ("M2", "present", ()),
        ("M9", "present", ("not_in_audience",)),
    ]


def test_voided_unexpected_checkin_gives_no_record() -> None:
    assert [r.member for r in run([checkin(0, member="M9", voided=True)])] == ["M1"]


def test_record_to_json() -> None:
    late = at(20) + timedelta(microseconds=999_999)
    (record,) = run([checkin(-30), checkin(20, BRIDGE), checkout(90, BRIDGE)])
    assert replace(record, first_in=late.astimezone(timezone(timedelta(hours=7)))).to_json() == {
        "member": "M1",
        "full_name": "Nguyễn Văn An",
        "unit": "C1",
        "status": "present",
        "form": "hall",
        "site": HALL,
        "site_name": "Hội trường Huyện ủy",
        "first_in": "2026-05-22T01:20:00Z",
        "last_out": "2026-05-22T02:30:00Z",
        "minutes": 90,
        "flags": ["multi_site", "left_early"],
        "excuse": None,
        "reflection": False,
        "quiz_score": None,
        "completed": True,
    }
    assert run([])[0].to_json()["first_in"] is None


def test_unsorted_events_are_refused() -> None:
    events = [checkin(0, member="M2"), checkin(0, member="M1")]
    with pytest.raises(ValueError, match="not sorted by member"):
        list(reconcile(SESSION, SITES, (M1, M2), events, {}, (), {}))
    events = [checkin(10), checkout(5), checkin(0)]
    with pytest.raises(ValueError, match="not sorted by ts"):
        list(reconcile(SESSION, SITES, (M1,), events, {}, (), {}))


def test_unsorted_or_repeated_expected_members_are_refused() -> None:
    for expected in [(M2, M1), (M1, M1)]:
        with pytest.raises(ValueError, match="not sorted by code or repeat"):
            list(reconcile(SESSION, SITES, expected, [], {}, (), {}))


def test_unexpected_member_must_be_named() -> None:
    with pytest.raises(ValueError, match="M9"):
        run([checkin(0, member="M9")], unexpected={})


def test_works_on_generators() -> None:
    members = (Member(f"M{i:07d}", "x", "C1") for i in range(1000))
    events = (checkin(i % 200 - 30, member=f"M{i:07d}") for i in range(0, 1000, 3))
    records = reconcile(SESSION, SITES, members, events, {}, (), {})
    summary = summarize(records)
    assert (summary.expected, summary.present + summary.late) == (1000, 334)


# --- summaries -------------------------------------------------------------------------------


def record(code: str, unit: str, status: Status, flags: tuple[str, ...] = ()) -> AttendanceRecord:
    """A record; one who attended completed it (as when nothing is required)."""
    completed = status in ("present", "late", "made_up")
    return AttendanceRecord(
        code, code, unit, status, None, None, None, None, None, 0, flags, None, completed=completed
    )


def test_summary() -> None:
    records = [
        record("a", "C1", "present"),
        record("b", "C1", "late"),
        record("c", "C1", "made_up"),
        record("d", "C1", "excused"),
        record("e", "C1", "absent"),
        record("f", "C1", "absent"),
        record("g", "C1", "present", ("not_in_audience",)),
    ]
    assert summarize(records).to_json() == {
        "expected": 6,
        "present": 1,
        "late": 1,
        "excused": 1,
        "made_up": 1,
        "absent": 2,
        "rate": 0.5,
        "completed": 3,
    }
    assert summarize([]) == Summary()
    assert summarize([record("a", "C1", "late")] * 2 + [record("b", "C1", "absent")]).rate == 0.6667


def test_summarize_by_unit_on_a_three_level_tree() -> None:
    # Tỉnh ủy -> two Đảng bộ -> chi bộ, given out of order; "X" lies outside the audience.
    units = {
        unit.code: unit
        for unit in [
            Unit("D2", "Đảng bộ huyện Chợ Mới", "P"),
            Unit("C3", "Chi bộ xã Yên Đĩnh", "D2"),
            Unit("P", "Tỉnh ủy Bắc Kạn"),
            Unit("C2", "Chi bộ xã Quân Hà", "D1"),
            Unit("C1", "Chi bộ xã Cẩm Giàng", "D1"),
            Unit("D1", "Đảng bộ huyện Bạch Thông", "P"),
            Unit("X", "Đảng bộ khác"),
        ]
    }
    records = [
        record("a", "C1", "present"),
        record("b", "C1", "late"),
        record("c", "C2", "absent"),
        record("d", "D1", "present"),
        record("e", "C3", "excused"),
        record("f", "C3", "made_up"),
        record("g", "X", "absent"),
        record("h", "C2", "present", ("not_in_audience",)),
    ]
    by_unit = summarize_by_unit(iter(records), units, ["P"])
    rows = [
        (unit.code, s.expected, s.present, s.late, s.excused, s.made_up, s.absent, s.rate)
        for unit, s in by_unit
    ]
    assert rows == [
        ("P", 6, 2, 1, 1, 1, 1, 0.6667),
        ("D1", 4, 2, 1, 0, 0, 1, 0.75),
        ("C1", 2, 1, 1, 0, 0, 0, 1.0),
        ("C2", 1, 0, 0, 0, 0, 1, 0.0),
        ("D2", 2, 0, 0, 1, 1, 0, 0.5),
        ("C3", 2, 0, 0, 1, 1, 0, 0.5),
    ]
    assert summarize(records).expected == 7  # "g" counts in the total only
    # A root inside another root's subtree is listed once; a unit with no one gets zeros.
    assert [u.code for u, _ in summarize_by_unit(records, units, ["D2", "P", "nope"])] == [
        "D2",
        "C3",
        "P",
        "D1",
        "C1",
        "C2",
    ]
    assert summarize_by_unit([], units, ["D2"])[1][1] == Summary()


# --- properties ------------------------------------------------------------------------------

CODES = [f"K{i:02d}" for i in range(10)]
MEMBERS = {code: Member(code, f"Đảng viên {code}", f"C{int(code[1:]) % 3}") for code in CODES}


@st.composite
def attendance(draw: st.DrawFn) -> dict[str, Any]:
    expected = sorted(draw(st.sets(st.sampled_from(CODES))))
    raw = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*CODES, None]),
                st.sampled_from(["checkin", "checkin", "checkout", "guests", "void"]),
                st.sampled_from(sorted(SITES)),
                # a coarse grid, so that ties in ts happen
                st.integers(-8, 20).map(lambda tick: tick * 10.0),
                st.booleans(),
                st.booleans(),
            ),
            max_size=40,
        )
    )
    ids = draw(st.lists(st.uuids().map(str), min_size=len(raw), max_size=len(raw), unique=True))
    events = [
        Event(
            id=eid,
            session_id=7,
            site_id=site,
            type=kind,
            ts=at(minutes),
            received_at=RECEIVED,
            member=code,
            voided=voided and kind == "checkin",
            late_upload=late,
        )
        for eid, (code, kind, site, minutes, voided, late) in zip(ids, raw, strict=True)
    ]
    return {
        "expected": [MEMBERS[code] for code in expected],
        "events": events,
        "excuses": {code: "lý do" for code in draw(st.sets(st.sampled_from(CODES)))},
        "made_up": frozenset(draw(st.sets(st.sampled_from(CODES)))),
        "requires": Requirements(
            reflection=draw(st.booleans()),
            quiz_pass=draw(st.sampled_from([None, 0.0, 5.0, 8.0])),
            quiz_max=10.0,
        ),
        "evidence": draw(evidence(7)),
        "makeup_evidence": draw(evidence(8)),
    }


def evidence(session_id: int) -> st.SearchStrategy[dict[str, Evidence]]:
    """Evidence handed in by some of the members, at the session or at a make-up session."""
    row = st.builds(
        Evidence,
        session_id=st.just(session_id),
        member=st.just(""),
        reflection=st.booleans(),
        quiz_score=st.sampled_from([None, 0.0, 4.5, 5.0, 8.0, 10.0]),
        self_study=st.booleans(),
    )
    return st.dictionaries(st.sampled_from(CODES), row).map(
        lambda rows: {code: replace(ev, member=code) for code, ev in rows.items()}
    )


def reconciled(
    case: dict[str, Any], events: Iterable[Event] | None = None
) -> list[AttendanceRecord]:
    unexpected = {code: m for code, m in MEMBERS.items() if m not in case["expected"]}
    return list(
        reconcile(
            replace(SESSION, requires=case["requires"]),
            SITES,
            iter(case["expected"]),
            iter(store_order(case["events"]) if events is None else events),
            case["excuses"],
            case["made_up"],
            unexpected,
            case["evidence"],
            case["makeup_evidence"],
        )
    )


def complete(requires: Requirements, ev: Evidence | None) -> bool:
    """The contract's completion, read the slow way: every requirement set is met."""
    reflection = ev.reflection if ev else False
    score = ev.quiz_score if ev else None
    wanted = []
    if requires.reflection:
        wanted.append(reflection)
    if requires.quiz_pass is not None:
        wanted.append(score is not None and score >= requires.quiz_pass)
    return all(wanted)


def reference(case: dict[str, Any]) -> list[AttendanceRecord]:
    """The rules read the slow, obvious way: lists per member, the union of stays by sorting."""
    late_at = START + timedelta(minutes=SESSION.late_after_minutes)
    # (type, ts, site, late_upload) of the events that count, from the first check-in on
    counted: dict[str, list[tuple[str, datetime, int, bool]]] = defaultdict(list)
    for e in store_order(case["events"]):
        if not e.member or not e.ts or e.voided or e.type not in ("checkin", "checkout"):
            continue
        if e.type == "checkin" or counted[e.member]:
            counted[e.member].append((e.type, e.ts, e.site_id, e.late_upload))
    expected = {m.code for m in case["expected"]}
    out = []
    for code in sorted(expected | {c for c, events in counted.items() if events}):
        member, events, excuse = MEMBERS[code], counted.get(code, []), case["excuses"].get(code)
        checkins = [(ts, site) for kind, ts, site, _ in events if kind == "checkin"]
        checkouts = [ts for kind, ts, _, _ in events if kind == "checkout"]
        requires, ev = case["requires"], case["evidence"].get(code)
        later = case["makeup_evidence"].get(code)
        if not checkins:
            base = replace(record(code, member.unit, "absent"), full_name=member.full_name,
                           excuse=excuse)  # fmt: skip
            if ev and ev.self_study:  # confirmed by the secretary: present, studied alone
                out.append(replace(base, status="present", form="self_study",
                                   reflection=ev.reflection, quiz_score=ev.quiz_score,
                                   completed=complete(requires, ev)))  # fmt: skip
            elif code in case["made_up"] or (later and later.self_study):
                out.append(replace(base, status="made_up",
                                   reflection=bool(later and later.reflection),
                                   quiz_score=later.quiz_score if later else None,
                                   completed=complete(requires, later)))  # fmt: skip
            else:
                status: Status = "excused" if excuse else "absent"
                out.append(replace(base, status=status,
                                   reflection=bool(ev and ev.reflection),
                                   quiz_score=ev.quiz_score if ev else None))  # fmt: skip
            continue
        stays = []
        for i, (kind, ts, _, _) in enumerate(events):
            if kind == "checkin":
                end = next((t for k, t, _, _ in events[i:] if k == "checkout"), END)
                stays.append((max(ts, START), min(end, END)))
        union, high = timedelta(0), START
        for begin, end in sorted(stays):
            begin = max(begin, high)
            if end > begin:
                union, high = union + (end - begin), end
        flags = []
        if len({site for _, site in checkins}) > 1:
            flags.append("multi_site")
        if events[-1][0] == "checkout" and events[-1][1] < END:
            flags.append("left_early")
        if code not in expected:
            flags.append("not_in_audience")
        if any(late for *_, late in events):
            flags.append("late_upload")
        confirmed = any(SITES[site].kind == "self_study" for _, site in checkins)
        first_in, first_site = checkins[0]
        out.append(
            AttendanceRecord(
                code,
                member.full_name,
                member.unit,
                "present" if confirmed or first_in <= late_at else "late",
                SITES[first_site].kind,
                first_site,
                SITES[first_site].name,
                first_in,
                checkouts[-1] if checkouts else None,
                int(union.total_seconds()) // 60,
                tuple(flags),
                excuse,
                bool(ev and ev.reflection),
                ev.quiz_score if ev else None,
                complete(requires, ev),
            )
        )
    return out


PROPERTIES = settings(max_examples=200, deadline=None, database=None)


@PROPERTIES
@given(attendance())
def test_matches_the_rules_read_the_slow_way(case: dict[str, Any]) -> None:
    assert reconciled(case) == reference(case)


@PROPERTIES
@given(attendance())
def test_one_record_per_expected_member_in_code_order(case: dict[str, Any]) -> None:
    records = reconciled(case)
    codes = [r.member for r in records]
    assert codes == sorted(set(codes))
    in_audience = [r.member for r in records if "not_in_audience" not in r.flags]
    assert in_audience == [m.code for m in case["expected"]]


@PROPERTIES
@given(attendance())
def test_summary_adds_up(case: dict[str, Any]) -> None:
    summary = summarize(reconciled(case))
    counts = [getattr(summary, status) for status in STATUSES]
    assert sum(counts) == summary.expected == len(case["expected"])
    assert 0.0 <= summary.rate <= 1.0


@PROPERTIES
@given(attendance())
def test_reconciling_twice_gives_the_same_answer(case: dict[str, Any]) -> None:
    assert reconciled(case) == reconciled(case)


@PROPERTIES
@given(attendance(), st.data())
def test_arrival_order_does_not_matter(case: dict[str, Any], data: st.DataObject) -> None:
    arrived = data.draw(st.permutations(case["events"]))
    others = [e for e in arrived if e.member is None]
    stored = store_order(arrived)
    # Events without a member (guests, voids) may come first, last or not at all.
    where = data.draw(st.sampled_from(["first", "last", "absent"]))
    stored = {"first": others + stored, "last": stored + others, "absent": stored}[where]
    assert reconciled(case, stored) == reconciled(case)
