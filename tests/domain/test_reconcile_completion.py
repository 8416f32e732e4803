"""Completion in attendance: the contract's `completed`, the self-study confirmation, made-up
members judged on the make-up session's evidence, and the reports that count them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from streamsvc.domain.attendance import EvidenceWindow
from streamsvc.domain.models import Event, Evidence, Member, Requirements, Session, Site, Unit
from streamsvc.domain.reconcile import (
    AttendanceRecord,
    Status,
    meets,
    reconcile,
    summarize,
    summarize_by_unit,
)
from streamsvc.domain.reports import AbsenceTally, YearlyTally

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
SESSION = Session(7, "Nghị quyết Trung ương 6 khóa XII", START, END, ("D1",), state="closed")
HALL, STUDY = 1, 2
SITES = {
    HALL: Site(HALL, 7, "Hội trường Huyện ủy", "hall"),
    STUDY: Site(STUDY, 7, "Tự nghiên cứu", "self_study"),
}
M1 = Member("M1", "Nguyễn Văn An", "C1")
NOTHING = Requirements()
REFLECTION = Requirements(reflection=True)
QUIZ = Requirements(quiz_pass=8.0, quiz_max=10.0)
BOTH = Requirements(reflection=True, quiz_pass=8.0, quiz_max=10.0)


def ev(
    reflection: bool = False,
    score: float | None = None,
    self_study: bool = False,
    session_id: int = 7,
    member: str = "M1",
) -> Evidence:
    return Evidence(session_id, member, reflection, score, self_study)


def checkin(minutes: float, site: int = HALL, member: str = "M1") -> Event:
    ts = START + timedelta(minutes=minutes)
    return Event(f"e-{member}-{minutes}", 7, site, "checkin", ts, START, member=member)


# How M1 stands at the session: the events, excuses and made-up set that give each status.
SETUPS: dict[str, tuple[list[Event], dict[str, str], frozenset[str]]] = {
    "present": ([checkin(-5)], {}, frozenset()),
    "late": ([checkin(40)], {}, frozenset()),
    "made_up": ([], {"M1": "ốm"}, frozenset({"M1"})),
    "excused": ([], {"M1": "ốm"}, frozenset()),
    "absent": ([], {}, frozenset()),
}


def one(
    setup: str,
    requires: Requirements = NOTHING,
    evidence: Evidence | None = None,
    later: Evidence | None = None,
) -> AttendanceRecord:
    events, excuses, made_up = SETUPS[setup]
    (record,) = reconcile(
        replace(SESSION, requires=requires),
        SITES,
        [M1],
        events,
        excuses,
        made_up,
        {},
        {} if evidence is None else {"M1": evidence},
        {} if later is None else {"M1": later},
    )
    return record


@pytest.mark.parametrize(
    ("requires", "evidence", "met"),
    [
        (NOTHING, None, True),
        (NOTHING, ev(), True),
        (REFLECTION, None, False),
        (REFLECTION, ev(reflection=False), False),
        (REFLECTION, ev(reflection=True), True),
        (QUIZ, None, False),
        (QUIZ, ev(reflection=True), False),  # no score is no pass
        (QUIZ, ev(score=7.99), False),
        (QUIZ, ev(score=8.0), True),  # the pass mark itself passes
        (QUIZ, ev(score=10.0), True),
        (Requirements(quiz_pass=0.0), ev(score=0.0), True),
        (Requirements(quiz_pass=0.0), ev(), False),  # even a pass mark of 0 needs a score
        (BOTH, ev(reflection=True, score=9.0), True),
        (BOTH, ev(reflection=False, score=9.0), False),
        (BOTH, ev(reflection=True, score=5.0), False),
    ],
)
def test_meets_every_requirement(requires, evidence, met):
    assert meets(requires, evidence) is met


@pytest.mark.parametrize(
    ("setup", "requires", "evidence", "completed"),
    [
        # attending is completing when nothing is required
        ("present", NOTHING, None, True),
        ("late", NOTHING, None, True),
        ("made_up", NOTHING, None, True),
        ("excused", NOTHING, None, False),
        ("absent", NOTHING, None, False),
        # a reflection required
        ("present", REFLECTION, ev(reflection=True), True),
        ("present", REFLECTION, ev(score=10.0), False),
        ("late", REFLECTION, ev(reflection=True), True),
        ("late", REFLECTION, None, False),
        # a quiz required
        ("present", QUIZ, ev(score=8.5), True),
        ("present", QUIZ, ev(score=6.0), False),
        ("late", QUIZ, ev(score=8.0), True),
        # both required
        ("present", BOTH, ev(reflection=True, score=8.0), True),
        ("present", BOTH, ev(reflection=True), False),
        ("present", BOTH, ev(score=9.0), False),
        # never without attending, whatever was handed in
        ("excused", REFLECTION, ev(reflection=True), False),
        ("absent", BOTH, ev(reflection=True, score=10.0), False),
        ("absent", NOTHING, ev(reflection=True), False),
    ],
)
def test_completed_per_status_and_requirements(setup, requires, evidence, completed):
    record = one(setup, requires, evidence)
    assert record.status == setup
    assert record.completed is completed
    # the record shows what was handed in at this session
    assert record.reflection is bool(evidence and evidence.reflection)
    assert record.quiz_score == (evidence.quiz_score if evidence else None)


@pytest.mark.parametrize(
    ("here", "later", "completed"),
    [
        (None, ev(reflection=True, score=9.0, session_id=8), True),
        (None, ev(reflection=True, score=7.0, session_id=8), False),
        (None, None, False),
        # evidence handed in for this session does not count for a made-up member
        (ev(reflection=True, score=10.0), None, False),
        (ev(reflection=True, score=10.0), ev(score=9.0, session_id=8), False),
    ],
)
def test_made_up_members_are_judged_on_the_make_up_evidence(here, later, completed):
    record = one("made_up", BOTH, here, later)
    assert record.status == "made_up"
    assert record.completed is completed
    # the values shown are those completion was judged on: the make-up session's
    assert record.reflection is bool(later and later.reflection)
    assert record.quiz_score == (later.quiz_score if later else None)


@pytest.mark.parametrize("setup", ["absent", "excused", "made_up"])
def test_self_study_confirmation_without_a_checkin_is_present(setup):
    record = one(setup, REFLECTION, ev(reflection=True, self_study=True))
    assert (record.status, record.form, record.site, record.site_name) == (
        "present",
        "self_study",
        None,
        None,
    )
    assert (record.first_in, record.last_out, record.minutes, record.flags) == (
        None,
        None,
        0,
        (),
    )
    assert record.completed is True
    assert record.excuse == SETUPS[setup][1].get("M1")  # an excuse given stays on the record


def test_self_study_confirmation_needs_the_requirements_too():
    record = one("absent", REFLECTION, ev(self_study=True))
    assert (record.status, record.form, record.completed) == ("present", "self_study", False)


def test_a_checkin_wins_over_a_self_study_confirmation():
    record = one("late", NOTHING, ev(self_study=True))
    assert (record.status, record.form, record.site) == ("late", "hall", HALL)


def test_self_study_confirmed_at_a_make_up_session_is_made_up():
    record = one("excused", REFLECTION, None, ev(reflection=True, self_study=True, session_id=8))
    assert (record.status, record.form, record.completed) == ("made_up", None, True)
    record = one("absent", NOTHING, None, ev(self_study=False, session_id=8))
    assert record.status == "absent"  # evidence alone at the make-up is not a make-up


def test_unexpected_members_complete_on_their_evidence():
    m9 = Member("M9", "Đồng Văn Chín", "C3")
    records = list(
        reconcile(
            replace(SESSION, requires=QUIZ),
            SITES,
            [M1],
            [checkin(0, member="M9")],
            {},
            (),
            {"M9": m9},
            {"M9": ev(score=9.0, member="M9")},
        )
    )
    assert [(r.member, r.status, r.flags, r.completed) for r in records] == [
        ("M1", "absent", (), False),
        ("M9", "present", ("not_in_audience",), True),
    ]
    assert summarize(records).completed == 0  # not in the audience: not counted


def test_a_checkin_at_a_self_study_site_completes_like_any_other():
    (record,) = reconcile(
        replace(SESSION, requires=REFLECTION),
        SITES,
        [M1],
        [checkin(50, STUDY)],
        {},
        (),
        {},
        {"M1": ev(reflection=True)},
    )
    assert (record.status, record.form, record.completed) == ("present", "self_study", True)


def rec(code: str, unit: str, status: Status, completed: bool) -> AttendanceRecord:
    return AttendanceRecord(
        code, code, unit, status, None, None, None, None, None, 0, (), None, completed=completed
    )


UNITS = {
    u.code: u
    for u in [
        Unit("P", "Tỉnh ủy Bắc Kạn"),
        Unit("D1", "Đảng bộ huyện Bạch Thông", "P"),
        Unit("C1", "Chi bộ xã Quân Hà", "D1"),
        Unit("C2", "Chi bộ xã Cẩm Giàng", "D1"),
        Unit("D2", "Đảng bộ huyện Chợ Mới", "P"),
        Unit("C3", "Chi bộ xã Yên Đĩnh", "D2"),
    ]
}


def test_summary_counts_completed_per_unit():
    records = [
        rec("a", "C1", "present", True),
        rec("b", "C1", "late", False),
        rec("c", "C2", "made_up", True),
        rec("d", "C2", "absent", False),
    ]
    assert summarize(records).completed == 2
    by_unit = summarize_by_unit(records, UNITS, ["D1"])
    assert [(u.code, s.expected, s.completed) for u, s in by_unit] == [
        ("D1", 4, 2),
        ("C1", 2, 1),
        ("C2", 2, 1),
    ]


def test_absences_report_lists_absent_or_incomplete_members():
    tally = AbsenceTally()
    tally.add_session(
        3,
        [
            rec("A", "C1", "present", False),
            rec("B", "C1", "absent", False),
            rec("C", "C1", "present", True),
            rec("D", "C1", "excused", False),  # excused: neither absent nor incomplete
            rec("E", "C1", "made_up", False),
            replace(rec("F", "C3", "present", False), flags=("not_in_audience",)),
        ],
    )
    tally.add_session(5, [rec("A", "C1", "absent", False), rec("B", "C1", "late", False)])
    report = tally.report(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert [
        (m["member"], m["absent"], m["sessions"], m["incomplete"], m["incomplete_sessions"])
        for m in report.to_json()["members"]
    ] == [
        ("A", 1, [5], 1, [3]),
        ("B", 1, [3], 1, [5]),
        ("E", 0, [], 1, [3]),
    ]


def test_yearly_tally_per_member_and_per_unit():
    yearly = YearlyTally(UNITS)
    first = [
        rec("A", "C1", "present", True),
        rec("B", "C1", "absent", False),
        rec("C", "C2", "made_up", False),
        replace(rec("X", "C3", "present", True), flags=("not_in_audience",)),
    ]
    yearly.add_records(3, first)
    yearly.add_summaries(summarize_by_unit(first, UNITS, ["P"]))
    second = [rec("A", "C1", "late", False), rec("B", "C1", "excused", False)]
    yearly.add_records(5, second)
    yearly.add_summaries(summarize_by_unit(second, UNITS, ["P"]))
    yearly.add_plans([("C1", True), ("C1", False), ("C2", False)], None)
    report = yearly.report(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert report.sessions == [3, 5]
    assert [m.to_json() for m in report.members] == [
        {"member": "A", "full_name": "A", "unit": "C1", "sessions": 2, "absent": 0,
         "excused": 0, "made_up": 0, "incomplete": 1},
        {"member": "B", "full_name": "B", "unit": "C1", "sessions": 2, "absent": 1,
         "excused": 1, "made_up": 0, "incomplete": 0},
        {"member": "C", "full_name": "C", "unit": "C2", "sessions": 1, "absent": 0,
         "excused": 0, "made_up": 1, "incomplete": 1},
    ]  # fmt: skip
    rows = [
        (u["code"], u["expected"], u["attended"], u["completed"], u["attendance_rate"],
         u["completion_rate"], u["plans_owed"], u["plans_handed_in"])
        for u in report.to_json()["units"]
    ]  # fmt: skip
    # depth-first; D2 and C3 expected nobody (X was not in the audience) and owed nothing
    assert rows == [
        ("P", 5, 3, 1, 0.6, 0.2, 3, 1),
        ("D1", 5, 3, 1, 0.6, 0.2, 3, 1),
        ("C1", 4, 2, 1, 0.5, 0.25, 2, 1),
        ("C2", 1, 1, 0, 1.0, 0.0, 1, 0),
    ]


def test_yearly_plans_count_only_inside_the_scope():
    yearly = YearlyTally(UNITS)
    yearly.add_plans([("C1", True), ("C3", False)], frozenset({"D1", "C1", "C2"}))
    report = yearly.report(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert [(u.code, u.plans_owed, u.plans_handed_in) for u in report.units] == [
        ("D1", 1, 1),
        ("C1", 1, 1),
    ]


def test_evidence_read_a_chunk_at_a_time_gives_the_same_records():
    """The pass reads the expected members' evidence a chunk at a time (EvidenceWindow): the
    records are those of the whole session's evidence at once, and the window never holds
    more than one chunk and the unexpected members' rows."""
    members = [Member(f"M{i}", f"Đảng viên {i}", "C1") for i in range(7)]
    m9 = Member("M9", "Đồng Văn Chín", "C3")
    events = [checkin(0, member="M1"), checkin(40, member="M4"), checkin(5, member="M9")]
    events.sort(key=lambda e: (e.member, e.ts))
    whole = {
        f"M{i}": ev(reflection=i % 2 == 0, score=float(i), self_study=i == 6, member=f"M{i}")
        for i in (0, 1, 2, 4, 5, 6, 9)
    }
    kept = {"M9": whole["M9"]}
    asked: list[list[str]] = []
    sizes: list[int] = []

    def fetch(codes):
        asked.append(list(codes))
        return {code: whole[code] for code in codes if code in whole}

    window = EvidenceWindow(kept, fetch, chunk=2)

    def watched(found):
        for member in found:
            sizes.append(len(window))
            yield member

    session = replace(SESSION, requires=Requirements(quiz_pass=2.0))
    chunked = list(
        reconcile(
            session, SITES, watched(window.follow(members)), events, {}, (), {"M9": m9}, window
        )
    )
    at_once = list(reconcile(session, SITES, members, events, {}, (), {"M9": m9}, whole))
    assert chunked == at_once
    assert asked == [["M0", "M1"], ["M2", "M3"], ["M4", "M5"], ["M6"]]
    assert max(sizes) <= 2 + len(kept)
    assert [(r.member, r.status, r.completed) for r in chunked] == [
        ("M0", "absent", False),
        ("M1", "present", False),  # a score of 1 is below the pass mark
        ("M2", "absent", False),
        ("M3", "absent", False),
        ("M4", "late", True),
        ("M5", "absent", False),
        ("M6", "present", True),  # confirmed self-study
        ("M9", "present", True),  # unexpected, its evidence kept throughout
    ]


def test_evidence_window_keeps_a_newcomers_rows():
    window = EvidenceWindow({}, lambda codes: {}, chunk=1)
    window.keep({"M9": ev(member="M9")})
    assert list(window.follow([M1])) == [M1]
    assert set(window) == {"M9"}
