"""Who owes an action plan, what is missing at a moment, what came in late: plain functions
over a unit tree, with the moments passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streamsvc.domain.models import ActionPlan, PlanRule, Unit
from streamsvc.domain.plans import (
    KINDS,
    depth,
    is_late,
    missing_at,
    owed_kinds,
    owes,
    owing_units,
    unit_plans,
)
from streamsvc.domain.policy import Scope, UnitTree

# province -> districts -> grassroots committees -> cells (the seed article's tree)
TREE = UnitTree(
    [
        Unit("TU", "Tỉnh ủy", None),
        Unit("DB1", "Huyện ủy Ba Bể", "TU"),
        Unit("CS11", "Đảng bộ xã Đồng Phúc", "DB1"),
        Unit("CB111", "Chi bộ thôn Nà Hàn", "CS11"),
        Unit("CS12", "Đảng bộ xã Nam Mẫu", "DB1"),
        Unit("DB2", "Huyện ủy Na Rì", "TU"),
        Unit("CS21", "Đảng bộ xã Côn Minh", "DB2"),
        Unit("CB211", "Chi bộ thôn Nà Lốc", "CS21"),
    ]
)
DUE = datetime(2026, 6, 30, 10, 0, tzinfo=UTC)


def plan(unit: str, kind: str = "committee", at: datetime = DUE) -> ActionPlan:
    return ActionPlan(1, unit, kind, at, "db1.org")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("TU", 0), ("DB2", 1), ("CS11", 2), ("CB211", 3), ("NOPE", -1)],
)
def test_depth_counts_from_the_root(code, expected):
    assert depth(TREE, code) == expected


@pytest.mark.parametrize(
    ("level", "audience", "scope", "expected"),
    [
        (2, ["TU"], None, ["CS11", "CS12", "CS21"]),
        (2, ["DB1"], None, ["CS11", "CS12"]),
        (2, ["TU", "DB1"], None, ["CS11", "CS12", "CS21"]),  # overlapping audience: once each
        (2, ["CS21"], None, ["CS21"]),  # an audience unit at the level owes itself
        (2, ["CB111"], None, []),  # below the level: the committee above is not audience
        (2, ["TU"], "DB1", ["CS11", "CS12"]),  # the caller's scope narrows the list
        (2, ["TU"], "CS12", ["CS12"]),
        (2, ["DB2"], "DB1", []),
        (2, ["TU"], "TU", ["CS11", "CS12", "CS21"]),
        (1, ["TU"], None, ["DB1", "DB2"]),
        (0, ["TU"], None, ["TU"]),
        (3, ["DB1"], None, ["CB111"]),
        (5, ["TU"], None, []),
        (2, ["NOPE"], None, []),
        (2, ["DB1"], "CS11", ["CS11"]),  # a scope inside the audience: walked alone
        (3, ["TU"], "CS11", ["CB111"]),
        (1, ["TU"], "CS11", []),  # the scope lies below the level
        (2, ["CS12", "CS21"], "DB1", ["CS12"]),
    ],
)
def test_owing_units_lie_at_the_rules_depth_inside_the_audience_and_the_scope(
    level, audience, scope, expected
):
    found = owing_units(
        PlanRule(depth=level), audience, TREE, None if scope is None else Scope(scope, TREE)
    )
    assert found == expected


def test_a_head_owes_a_plan_only_when_the_rule_says_so():
    assert owed_kinds(PlanRule(depth=2)) == ("committee",)
    assert owed_kinds(PlanRule(depth=2, heads=True)) == ("committee", "head") == KINDS


@pytest.mark.parametrize(
    ("rule", "audience", "unit", "kind", "expected"),
    [
        (PlanRule(2, heads=True), ["TU"], "CS11", "committee", True),
        (PlanRule(2, heads=True), ["DB2", "DB1"], "CS11", "head", True),
        (PlanRule(2, heads=True), ["CS11"], "CS11", "head", True),
        (PlanRule(2), ["TU"], "CS11", "head", False),  # heads owe none
        (PlanRule(2, heads=True), ["DB2"], "CS11", "committee", False),  # not audience
        (PlanRule(2, heads=True), ["TU"], "CB111", "committee", False),  # below the level
        (PlanRule(2, heads=True), ["TU"], "DB1", "committee", False),  # above it
        (PlanRule(2, heads=True), ["CB111"], "CS11", "committee", False),
        (PlanRule(2, heads=True), ["TU"], "CS11", "secretary", False),
        (PlanRule(2, heads=True), ["TU"], "NOPE", "committee", False),
        (None, ["TU"], "CS11", "committee", False),
    ],
)
def test_one_unit_owes_what_the_list_says(rule, audience, unit, kind, expected):
    assert owes(rule, audience, TREE, unit, kind) is expected
    if rule is not None and kind == "committee":  # every owing unit owes its committee's
        assert (unit in owing_units(rule, audience, TREE)) is expected


@pytest.mark.parametrize(
    ("handed_in", "due", "late"),
    [
        (DUE - timedelta(seconds=1), DUE, False),
        (DUE, DUE, False),
        (DUE + timedelta(seconds=1), DUE, True),
        (DUE + timedelta(days=300), None, False),
    ],
)
def test_late_is_handed_in_after_the_deadline(handed_in, due, late):
    assert is_late(plan("CS11", at=handed_in), due) is late
    [unit] = unit_plans(PlanRule(2, due=due), ["CS11"], {}, [plan("CS11", at=handed_in)])
    assert unit.late(due) is late


def test_each_owing_unit_with_its_plans_in_order_and_named():
    rule = PlanRule(2, heads=True, due=DUE)
    plans = [
        plan("CS12", "head"),
        plan("CS11"),
        plan("CB111"),  # a unit that owes nothing (the rule changed): left out
    ]
    units = unit_plans(rule, ["CS11", "CS12"], {"CS11": "Đồng Phúc"}, plans)
    assert [(u.code, u.name, u.owed, sorted(u.plans)) for u in units] == [
        ("CS11", "Đồng Phúc", KINDS, ["committee"]),
        ("CS12", "CS12", KINDS, ["head"]),  # no name known: the code stands in
    ]
    assert [u.missing() for u in units] == [["head"], ["committee"]]


def test_a_head_plan_is_ignored_when_heads_owe_none():
    [unit] = unit_plans(PlanRule(2), ["CS11"], {}, [plan("CS11", "head")])
    assert unit.plans == {} and unit.missing() == ["committee"]


def test_missing_at_a_moment_counts_plans_handed_in_by_then():
    rule = PlanRule(2, heads=True, due=DUE)
    early, later = DUE - timedelta(days=1), DUE + timedelta(days=2)
    units = unit_plans(
        rule,
        ["CS11", "CS12", "CS21"],
        {},
        [
            plan("CS11", "committee", early),
            plan("CS11", "head", early),
            plan("CS12", "committee", early),
            plan("CS12", "head", later),
        ],
    )
    before = {u.code: u.missing(DUE) for u in missing_at(units, DUE)}
    assert before == {"CS12": ["head"], "CS21": ["committee", "head"]}
    after = {u.code: u.missing(later) for u in missing_at(units, later)}
    assert after == {"CS21": ["committee", "head"]}
    assert missing_at(units, early - timedelta(seconds=1)) == units
    assert [u.late(DUE) for u in units] == [False, True, False]
