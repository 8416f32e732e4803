"""Action plans of a session: who owes one, recording and withdrawing them, who has not
handed one in by a deadline.

Which units owe what is decided in `domain/plans.py` from the session's `PlanRule` and the
unit tree; this service loads the session, the tree and the stored plans, asks the policy
whether the caller may see or record them, and writes each change with its audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from streamsvc.domain.models import ActionPlan, PlanRule, Session
from streamsvc.domain.plans import KINDS, UnitPlans, missing_at, owes, owing_units, unit_plans
from streamsvc.domain.policy import Caller
from streamsvc.domain.timefmt import format_ts, parse_ts
from streamsvc.errors import InvalidInput, NotFound
from streamsvc.ports import Store
from streamsvc.services.access import AccessService

__all__ = ["MAX_NOTE", "PlanBoard", "PlanService"]

MAX_NOTE = 2000
#: How far ahead of the service's clock a given `handed_in_at` may lie (a client's clock).
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class PlanBoard:
    """The owing units of a session in the caller's scope, with their plans."""

    session: Session
    rule: PlanRule | None
    units: list[UnitPlans]


class PlanService:
    def __init__(self, store: Store, access: AccessService) -> None:
        self.store = store
        self.access = access

    async def board(self, caller: Caller, session_id: int) -> PlanBoard:
        """Every owing unit in the caller's scope with what it handed in (viewer)."""
        session = await self.access.session(caller, session_id)
        return await self._board(caller, session)

    async def missing(
        self, caller: Caller, session_id: int, at: datetime | None = None
    ) -> tuple[datetime, list[UnitPlans]]:
        """The owing units in scope that had not handed in every owed kind by `at` (by
        default the rule's deadline, or now when it has none)."""
        session = await self.access.session(caller, session_id)
        board = await self._board(caller, session)
        when = at or (board.rule.due if board.rule else None) or datetime.now(UTC)
        return when, missing_at(board.units, when)

    async def record(
        self,
        caller: Caller,
        session_id: int,
        unit: str,
        kind: str,
        body: Any,
        now: datetime | None = None,
    ) -> ActionPlan:
        """Record (or replace) a unit's plan as handed in (organizer, unit in scope)."""
        now = now or datetime.now(UTC)
        session = await self.access.session(caller, session_id, "organizer")
        await self._unit_in_scope(caller, unit)
        await self._owed(session, unit, kind)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        handed_in_at = now
        if body.get("handed_in_at") is not None:
            given = parse_ts(body["handed_in_at"])
            if given is None:
                raise InvalidInput(
                    "handed_in_at must be an RFC 3339 time with an offset, "
                    "e.g. 2026-05-22T07:30:00+07:00",
                    {"field": "handed_in_at"},
                )
            if given > now + CLOCK_SKEW:
                raise InvalidInput("handed_in_at lies in the future", {"field": "handed_in_at"})
            if given < session.starts_at:
                raise InvalidInput(
                    "handed_in_at lies before the session started", {"field": "handed_in_at"}
                )
            handed_in_at = given
        note = body.get("note")
        if note is not None:
            if not isinstance(note, str):
                raise InvalidInput("note must be text or null", {"field": "note"})
            if len(note) > MAX_NOTE:
                raise InvalidInput(f"note is longer than {MAX_NOTE} characters", {"field": "note"})
            note = note.strip() or None
        plan = ActionPlan(session_id, unit, kind, handed_in_at, caller.who.actor, note)
        entry = caller.entry(
            "plan_recorded",
            now,
            session_id=session_id,
            target=unit,
            detail=f"{kind}, handed in {format_ts(handed_in_at)}",
            unit=unit,
        )
        await self.store.save_plan(plan, audit=entry)
        return plan

    async def withdraw(self, caller: Caller, session_id: int, unit: str, kind: str) -> None:
        """Take a recorded plan back (organizer, unit in scope). A plan of a unit that no
        longer owes one (the rule changed) may still be withdrawn."""
        session = await self.access.session(caller, session_id, "organizer")
        await self._unit_in_scope(caller, unit)
        entry = caller.entry(
            "plan_withdrawn",
            datetime.now(UTC),
            session_id=session_id,
            target=unit,
            detail=kind,
            unit=unit,
        )
        if kind in KINDS and await self.store.delete_plan(session_id, unit, kind, audit=entry):
            return
        await self._owed(session, unit, kind)
        raise NotFound(
            f"unit {unit} has no {kind} plan recorded at session {session_id}",
            code="unknown_plan",
        )

    async def _board(self, caller: Caller, session: Session) -> PlanBoard:
        rule = session.plans
        if rule is None:
            return PlanBoard(session, None, [])
        tree = await self.access.tree()
        units = await self.access.units()
        owing = owing_units(rule, await self.access.audience(session), tree, caller.scope)
        names = {code: units[code].name for code in owing if code in units}
        plans = await self.store.list_plans(session.id) if owing else []
        return PlanBoard(session, rule, unit_plans(rule, owing, names, plans))

    async def _unit_in_scope(self, caller: Caller, unit: str) -> None:
        """404 for an unknown unit, 403 for one outside the caller's scope."""
        if unit not in await self.access.tree():
            raise NotFound(f"unit {unit} does not exist", code="unknown_unit")
        caller.allow("organizer", units=[unit])

    async def _owed(self, session: Session, unit: str, kind: str) -> None:
        """404 `unknown_unit` unless the unit owes the session a plan of `kind`."""
        tree = await self.access.tree()
        if not owes(session.plans, await self.access.audience(session), tree, unit, kind):
            raise NotFound(
                f"unit {unit} owes no action plan of kind {kind} at session {session.id}",
                {"unit": unit, "kind": kind},
                code="unknown_unit",
            )
