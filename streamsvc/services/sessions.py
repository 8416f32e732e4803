"""Sessions, their sites and excuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from streamsvc.domain.models import FORMS, NewSite, PlanRule, Requirements, Session, Site
from streamsvc.domain.policy import Caller, rows_outside
from streamsvc.domain.sites import validate_sites
from streamsvc.domain.timefmt import format_ts, parse_ts
from streamsvc.errors import Conflict, Forbidden, ImportRejected, InvalidInput, NotFound
from streamsvc.ports import Store
from streamsvc.services.access import AccessService
from streamsvc.services.recent import Recent
from streamsvc.services.tokens import hash_token, new_token

__all__ = ["NewSessionData", "SessionService", "parse_plans", "parse_requires", "rules_detail"]

MAX_TITLE = 300
#: How long a session read for a device's welcome is reused by the next devices.
WELCOME_MAX_AGE = 2.0


@dataclass(frozen=True)
class NewSessionData:
    title: str
    starts_at: datetime
    ends_at: datetime
    audience: tuple[str, ...]
    late_after_minutes: int
    makeup_for: int | None
    requires: Requirements = field(default_factory=Requirements)
    plans: PlanRule | None = None


def _require_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def _int(body: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if type(value) is not int or not low <= value <= high:
        raise InvalidInput(f"{key} must be a whole number from {low} to {high}", {"field": key})
    return value


def _str(body: dict[str, Any], key: str, limit: int = MAX_TITLE) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{key} is required and must be a non-empty string", {"field": key})
    if len(value) > limit:
        raise InvalidInput(f"{key} is longer than {limit} characters", {"field": key})
    return value.strip()


def _time(body: dict[str, Any], key: str) -> datetime:
    value = parse_ts(body.get(key))
    if value is None:
        raise InvalidInput(
            f"{key} must be an RFC 3339 time with an offset, e.g. 2026-05-22T07:30:00+07:00",
            {"field": key},
        )
    return value


#: The largest quiz range a session may set: any real quiz fits, and a score stays exact.
MAX_QUIZ = 1_000_000.0
#: The deepest level a plan rule may name (root = 0): far below any real party tree.
MAX_PLAN_DEPTH = 64
NOTHING_REQUIRED = Requirements()
#: What PATCH /api/v1/sessions/{sid} may change.
CHANGEABLE = ("requires", "plans")


def _number(value: Any) -> float | None:
    """A JSON number as a float (never a boolean); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _object(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{key} must be a JSON object", {"field": key})
    return value


def _flag(body: dict[str, Any], key: str, default: bool, field_name: str) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{field_name} must be true or false", {"field": field_name})
    return value


def parse_requires(value: Any, base: Requirements = NOTHING_REQUIRED) -> Requirements:
    """`requires` of a session as the API takes it (null: nothing required); a field left
    out keeps `base`'s (the defaults on create, the stored requirements on a change)."""
    if value is None:
        return NOTHING_REQUIRED
    body = _object(value, "requires")
    reflection = _flag(body, "reflection", base.reflection, "requires.reflection")
    quiz_max = _number(body.get("quiz_max", base.quiz_max))
    if quiz_max is None or not 0 < quiz_max <= MAX_QUIZ:
        raise InvalidInput(
            f"requires.quiz_max must be a number above 0, at most {MAX_QUIZ:g}",
            {"field": "requires.quiz_max"},
        )
    raw_pass = body.get("quiz_pass", base.quiz_pass)
    quiz_pass = None if raw_pass is None else _number(raw_pass)
    if raw_pass is not None and (quiz_pass is None or not 0 <= quiz_pass <= quiz_max):
        raise InvalidInput(
            f"requires.quiz_pass must be null or a number from 0 to quiz_max ({quiz_max:g})",
            {"field": "requires.quiz_pass"},
        )
    return Requirements(reflection, quiz_pass, quiz_max)


def parse_plans(value: Any, base: PlanRule | None = None) -> PlanRule | None:
    """`plans` of a session as the API takes it (null: no unit owes a plan); a field left
    out keeps `base`'s, and `depth` is required when there is no rule yet."""
    if value is None:
        return None
    body = _object(value, "plans")
    depth = body.get("depth", None if base is None else base.depth)
    if type(depth) is not int or not 0 <= depth <= MAX_PLAN_DEPTH:
        raise InvalidInput(
            f"plans.depth must be a whole number from 0 (the tree's root) to {MAX_PLAN_DEPTH}",
            {"field": "plans.depth"},
        )
    heads = _flag(body, "heads", False if base is None else base.heads, "plans.heads")
    due = None if base is None else base.due
    if "due" in body:
        due = None if body["due"] is None else parse_ts(body["due"])
        if body["due"] is not None and due is None:
            raise InvalidInput(
                "plans.due must be null or an RFC 3339 time with an offset",
                {"field": "plans.due"},
            )
    return PlanRule(depth, heads, due)


def rules_detail(requires: Requirements, plans: PlanRule | None) -> str:
    """A session's rules as an audit entry's detail says them, true/false as the API does."""

    def number(value: float | None) -> str:
        return "null" if value is None else f"{value:g}"

    text = (
        f"requires: reflection={str(requires.reflection).lower()} "
        f"quiz_pass={number(requires.quiz_pass)} quiz_max={number(requires.quiz_max)}"
    )
    if plans is None:
        return f"{text}; plans: null"
    return (
        f"{text}; plans: depth={plans.depth} heads={str(plans.heads).lower()} "
        f"due={format_ts(plans.due) or 'null'}"
    )


class SessionService:
    def __init__(self, store: Store, access: AccessService | None = None) -> None:
        self.store = store
        self.access = access or AccessService(store)
        self._welcome: Recent[int, Session] = Recent(self.get_session, max_age=WELCOME_MAX_AGE)

    async def session_for_welcome(self, session_id: int) -> Session:
        """The session as a device's welcome shows it, read at most every couple of seconds.

        When thousands of sites connect in the same minute, each welcome would otherwise
        recount `expected` over the audience subtrees (milliseconds at a province's size). A
        close on this instance is seen at once; elsewhere within `WELCOME_MAX_AGE`. Check-ins
        never depend on this copy.
        """
        return await self._welcome.get(session_id)

    async def create_session(self, caller: Caller, body: Any) -> Session:
        """Organizers create sessions whose audience lies inside their scope (a make-up
        session of the excused: the audience of the session it makes up)."""
        caller.allow("organizer")
        body = _require_dict(body)
        title = _str(body, "title")
        starts_at, ends_at = _time(body, "starts_at"), _time(body, "ends_at")
        if ends_at <= starts_at:
            raise InvalidInput("ends_at must be after starts_at", {"field": "ends_at"})
        late = _int(body, "late_after_minutes", 15, 0, 24 * 60)
        makeup_for = _int(body, "makeup_for", None, 1, 2**62)
        audience = body.get("audience", [])
        if audience is None:
            audience = []
        if not isinstance(audience, list) or not all(isinstance(a, str) for a in audience):
            raise InvalidInput("audience must be a list of unit codes", {"field": "audience"})
        requires = parse_requires(body.get("requires"))
        plans = parse_plans(body.get("plans"))
        original = None if makeup_for is None else await self.store.get_session(makeup_for)
        if makeup_for is not None and (
            original is None or not caller.scope.meets(await self.access.audience(original))
        ):
            raise NotFound(
                f"session {makeup_for} (makeup_for) does not exist",
                {"field": "makeup_for"},
                code="unknown_session",
            )
        if not audience and makeup_for is None:
            raise InvalidInput("audience must name at least one unit", {"field": "audience"})
        known = {u.code for u in await self.store.list_units()}
        unknown = sorted({a for a in audience if a not in known})
        if unknown:
            raise NotFound(
                f"unknown unit(s) in audience: {', '.join(unknown)}",
                {"field": "audience", "unknown": unknown},
                code="unknown_unit",
            )
        effective = audience or (await self.access.audience(original) if original else ())
        if not caller.scope.holds(effective):
            raise Forbidden("the audience reaches outside your scope", {"field": "audience"})
        new = NewSessionData(
            title,
            starts_at,
            ends_at,
            tuple(dict.fromkeys(audience)),
            late or 0,
            makeup_for,
            requires,
            plans,
        )
        from_excused = makeup_for if not audience else None
        entry = caller.entry(
            "session_created",
            datetime.now(UTC),
            detail=title,
            unit=caller.scope.tree.common_ancestor(effective) or caller.scope.root,
        )
        session = await self.store.create_session(new, from_excused_of=from_excused, audit=entry)
        return (await self._in_scope(caller, [session]))[0]

    async def get_session(self, session_id: int) -> Session:
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFound(f"session {session_id} does not exist", code="unknown_session")
        return session

    async def list_sessions(self, caller: Caller) -> list[Session]:
        caller.allow("viewer")
        visible = await self.access.visible(caller, await self.store.list_sessions())
        return await self._in_scope(caller, visible)

    async def session(self, caller: Caller, session_id: int) -> Session:
        """The session as the caller sees it, if they may (else 404 exactly as an unknown
        one): `expected` counts the members in their scope."""
        found = await self.access.session(caller, session_id)
        return (await self._in_scope(caller, [found]))[0]

    async def _in_scope(self, caller: Caller, sessions: list[Session]) -> list[Session]:
        """The sessions with `expected` restricted to the caller's scope, as the contract
        restricts every count a scoped caller sees (one count per session; none for the
        whole tree)."""
        root = caller.scope.root
        if root is None or not sessions:
            return sessions
        counts = await self.store.count_expected_within([s.id for s in sessions], root)
        return [replace(s, expected=counts.get(s.id, 0)) for s in sessions]

    async def close_session(
        self, caller: Caller, session_id: int, now: datetime | None = None
    ) -> Session:
        found = await self.access.session(caller, session_id, "organizer", whole_session=True)
        now = now or datetime.now(UTC)
        entry = caller.entry(
            "session_closed",
            now,
            session_id=session_id,
            unit=caller.scope.tree.common_ancestor(await self.access.audience(found))
            or caller.scope.root,
        )
        self._welcome.forget(session_id)
        session = await self.store.close_session(session_id, now, audit=entry)
        self._welcome.forget(session_id)
        if session is None:
            raise NotFound(f"session {session_id} does not exist", code="unknown_session")
        return (await self._in_scope(caller, [session]))[0]

    async def update_session(self, caller: Caller, session_id: int, body: Any) -> Session:
        """Change what completing the session needs (`requires`) and which units owe a plan
        (`plans`): organizers whose scope holds the whole audience, even after the close,
        since completion is read from them when the attendance is exported."""
        found = await self.access.session(caller, session_id, "organizer", whole_session=True)
        body = _require_dict(body)
        other = sorted(k for k in body if k not in CHANGEABLE)
        if other:
            raise InvalidInput(
                f"only {' and '.join(CHANGEABLE)} may change, not {', '.join(other)}",
                {"field": other[0]},
            )
        if not body:
            raise InvalidInput(f"nothing to change: give {' and/or '.join(CHANGEABLE)}")
        requires = found.requires
        if "requires" in body:
            requires = parse_requires(body["requires"], found.requires)
        plans = parse_plans(body["plans"], found.plans) if "plans" in body else found.plans
        entry = caller.entry(
            "session_changed",
            datetime.now(UTC),
            session_id=session_id,
            detail=rules_detail(requires, plans),
            unit=caller.scope.tree.common_ancestor(await self.access.audience(found))
            or caller.scope.root,
        )
        self._welcome.forget(session_id)
        session = await self.store.update_session_rules(session_id, requires, plans, audit=entry)
        if session is None:
            raise NotFound(f"session {session_id} does not exist", code="unknown_session")
        return (await self._in_scope(caller, [session]))[0]

    async def create_site(self, caller: Caller, session_id: int, body: Any) -> tuple[Site, str]:
        """Register a site; the coordinator token is returned once and stored hashed."""
        session = await self.access.session(caller, session_id, "organizer")
        body = _require_dict(body)
        name = _str(body, "name")
        kind = body.get("kind")
        if kind not in FORMS:
            raise InvalidInput(f"kind must be one of {', '.join(FORMS)}", {"field": "kind"})
        unit = body.get("unit")
        if unit is not None:
            if not isinstance(unit, str):
                raise InvalidInput("unit must be a unit code or null", {"field": "unit"})
            if unit not in {u.code for u in await self.store.list_units()}:
                raise NotFound(
                    f"unit {unit} does not exist", {"field": "unit"}, code="unknown_unit"
                )
        capacity = _int(body, "capacity", None, 0, 10_000_000)
        caller.allow("organizer", units=[unit])
        if not session.is_open:
            raise Conflict(f"session {session_id} is closed", code="session_closed")
        token = new_token()
        entry = caller.entry(
            "site_created", datetime.now(UTC), session_id=session_id, detail=name, unit=unit
        )
        site = await self.store.create_site(
            NewSite(session_id, name, kind, unit, capacity, hash_token(token)), audit=entry
        )
        return site, token

    async def create_sites(
        self, caller: Caller, session_id: int, rows: Sequence[Any]
    ) -> list[tuple[Site, str]]:
        """Register many sites at once, all or none; each token is returned once, stored hashed.

        Every bad row is listed (`domain/sites.py`) and nothing is applied; the sites go in
        with one transaction, so 31,000 of them take seconds rather than a request each.
        """
        session = await self.access.session(caller, session_id, "organizer")
        units = {u.code for u in await self.store.list_units()}
        fields, errors = validate_sites(rows, units)
        if errors:
            raise ImportRejected(f"{len(errors)} bad row(s); no site was registered", errors)
        outside = rows_outside(caller.scope, [unit for _, _, unit, _ in fields])
        if outside:
            raise Forbidden(
                f"{len(outside)} site(s) outside your scope; no site was registered", outside
            )
        if not session.is_open:
            raise Conflict(f"session {session_id} is closed", code="session_closed")
        tokens = [new_token() for _ in fields]
        now = datetime.now(UTC)
        entries = [
            caller.entry("site_created", now, session_id=session_id, detail=name, unit=unit)
            for name, _, unit, _ in fields
        ]
        sites = await self.store.create_sites(
            [
                NewSite(session_id, name, kind, unit, capacity, hash_token(token))
                for (name, kind, unit, capacity), token in zip(fields, tokens, strict=True)
            ],
            audit=entries,
        )
        return list(zip(sites, tokens, strict=True))

    async def list_sites(self, caller: Caller, session_id: int) -> list[Site]:
        """The session's sites in the caller's scope."""
        await self.access.session(caller, session_id)
        return [s for s in await self.store.list_sites(session_id) if caller.scope.covers(s.unit)]

    async def reset_site_token(self, caller: Caller, session_id: int, site_id: int) -> str:
        """A new coordinator token for a site; the old one is refused from now on (the
        caller closes its open sockets on every instance)."""
        await self.access.session(caller, session_id, "organizer")
        site = await self.store.get_site(site_id)
        if site is None or site.session_id != session_id or not caller.scope.covers(site.unit):
            if site is not None and site.session_id == session_id:
                caller.allow("organizer", units=[site.unit])
            raise NotFound(f"session {session_id} has no site {site_id}", code="unknown_site")
        token = new_token()
        entry = caller.entry(
            "site_token_reset",
            datetime.now(UTC),
            session_id=session_id,
            target=str(site_id),
            detail=site.name,
            unit=site.unit,
        )
        if await self.store.reset_site_token(site_id, hash_token(token), audit=entry) is None:
            raise NotFound(f"session {session_id} has no site {site_id}", code="unknown_site")
        return token

    async def _member_in_scope(self, caller: Caller, member: str) -> str:
        """The member's unit, if the member exists and lies in the caller's scope."""
        found = await self.store.get_members([member])
        if member not in found:
            raise NotFound(
                f"member {member} does not exist", {"field": "member"}, code="unknown_member"
            )
        unit = found[member].unit
        caller.allow("organizer", units=[unit])
        return unit

    async def add_excuse(self, caller: Caller, session_id: int, body: Any) -> dict[str, Any]:
        await self.access.session(caller, session_id, "organizer")
        body = _require_dict(body)
        member = _str(body, "member", 64)
        reason = _str(body, "reason", 2000)
        unit = await self._member_in_scope(caller, member)
        if not await self.store.is_expected(session_id, member):
            raise Conflict(
                f"member {member} is not expected at session {session_id}", code="not_expected"
            )
        entry = caller.entry(
            "excuse_recorded",
            datetime.now(UTC),
            session_id=session_id,
            target=member,
            detail=reason,
            unit=unit,
        )
        if not await self.store.add_excuse(session_id, member, reason, audit=entry):
            raise Conflict(
                f"member {member} has checked in and cannot be excused", code="already_present"
            )
        return {"session": session_id, "member": member, "reason": reason}

    async def withdraw_excuse(self, caller: Caller, session_id: int, member: str) -> None:
        """Take an excuse back (recorded by mistake); 404 when the member has none here."""
        await self.access.session(caller, session_id, "organizer")
        unit = await self._member_in_scope(caller, member)
        entry = caller.entry(
            "excuse_withdrawn", datetime.now(UTC), session_id=session_id, target=member, unit=unit
        )
        if not await self.store.delete_excuse(session_id, member, audit=entry):
            raise NotFound(
                f"member {member} has no excuse at session {session_id}", code="unknown_excuse"
            )
