"""Action plans: which units owe one after a session, what they handed in, what is missing.

After a resolution, grassroots committees and their heads owe an action plan (DOMAIN.md). A
session's `PlanRule` names the level: every unit at `depth` of the unit tree (the root is 0)
inside the audience subtrees owes a `committee` plan, and with `heads` its head owes a personal
`head` plan too. The tree is not fixed in depth (districts were abolished in 2025), so the rule
names a depth, not a kind of unit.

Pure: the tree, the stored plans and the moment asked about are handed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from streamsvc.domain.models import ActionPlan, PlanRule
from streamsvc.domain.policy import Scope, UnitTree

__all__ = [
    "KINDS",
    "UnitPlans",
    "depth",
    "is_late",
    "missing_at",
    "owed_kinds",
    "owes",
    "owing_units",
    "unit_plans",
]

#: The kinds of plan a unit may owe, in the order they are listed.
KINDS: tuple[str, ...] = ("committee", "head")


def depth(tree: UnitTree, code: str) -> int:
    """How far below its root a unit lies (a root is 0; an unknown unit is -1)."""
    return len(tree.lineage(code)) - 1


def owed_kinds(rule: PlanRule) -> tuple[str, ...]:
    """What each owing unit owes: its committee's plan, and its head's when the rule says so."""
    return KINDS if rule.heads else KINDS[:1]


def owing_units(
    rule: PlanRule, audience: Sequence[str], tree: UnitTree, scope: Scope | None = None
) -> list[str]:
    """The units that owe a plan, sorted by code: at `rule.depth` inside the audience
    subtrees, and inside `scope` when one is given.

    An audience unit below the rule's level has no unit at that level in its subtree (the
    committee above it is not part of the audience), so it adds nothing. The walk goes down
    level by level and stops at the rule's, so the cells below it (tens of thousands in a
    province) are never visited.
    """
    inside = None if scope is None else scope.root
    starts: set[str] = set()
    for root in audience:
        if inside is not None:
            if tree.within(inside, root):
                root = inside  # the scope lies inside this audience unit: walk the scope
            elif not tree.within(root, inside):
                continue
        starts.add(root)
    found: set[str] = set()
    for start in starts:
        below = rule.depth - depth(tree, start)
        if start not in tree or below < 0:
            continue
        level = [start]
        for _ in range(below):
            level = [kid for code in level for kid in tree.children(code)]
        found.update(level)
    return sorted(found)


def owes(
    rule: PlanRule | None, audience: Sequence[str], tree: UnitTree, unit: str, kind: str
) -> bool:
    """Whether `unit` owes the session a plan of `kind` (one unit's answer, without listing
    every owing unit)."""
    return (
        rule is not None
        and kind in owed_kinds(rule)
        and depth(tree, unit) == rule.depth
        and any(tree.within(unit, root) for root in audience)
    )


def is_late(plan: ActionPlan, due: datetime | None) -> bool:
    """Handed in after the deadline (never, when the rule sets none)."""
    return due is not None and plan.handed_in_at > due


@dataclass(frozen=True, slots=True)
class UnitPlans:
    """One owing unit: what it owes and the plans it handed in, by kind."""

    code: str
    name: str
    owed: tuple[str, ...]
    plans: Mapping[str, ActionPlan]

    def missing(self, at: datetime | None = None) -> list[str]:
        """The owed kinds not handed in (by `at`, when given: a plan handed in later counts
        as missing then)."""
        return [
            kind
            for kind in self.owed
            if kind not in self.plans or (at is not None and self.plans[kind].handed_in_at > at)
        ]

    def late(self, due: datetime | None) -> bool:
        """Whether any owed plan was handed in after `due`. A plan still missing is not
        late but missing: the missing report answers for it."""
        return any(is_late(self.plans[k], due) for k in self.owed if k in self.plans)


def unit_plans(
    rule: PlanRule,
    owing: Sequence[str],
    names: Mapping[str, str],
    plans: Iterable[ActionPlan],
) -> list[UnitPlans]:
    """Each owing unit with its plans, in the order of `owing`. Plans of units or kinds that
    no longer owe one (the rule changed since) are left out, not shown as handed in."""
    kinds = owed_kinds(rule)
    wanted = set(owing)
    by_unit: dict[str, dict[str, ActionPlan]] = {}
    for plan in plans:
        if plan.unit in wanted and plan.kind in kinds:
            by_unit.setdefault(plan.unit, {})[plan.kind] = plan
    return [UnitPlans(code, names.get(code, code), kinds, by_unit.get(code, {})) for code in owing]


def missing_at(units: Iterable[UnitPlans], at: datetime) -> list[UnitPlans]:
    """The units that had not handed in every owed kind by `at`."""
    return [u for u in units if u.missing(at)]
