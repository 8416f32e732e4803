"""Plain data shared by the core, the stores and the web layer.

Times are always timezone-aware UTC datetimes inside the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "FORMS",
    "PLAN_KINDS",
    "ROLES",
    "ActionPlan",
    "AuditEntry",
    "Event",
    "EventType",
    "Evidence",
    "Excuse",
    "Form",
    "Member",
    "NewSite",
    "PlanRule",
    "Requirements",
    "Role",
    "Session",
    "Site",
    "Unit",
    "User",
]

Form = Literal["hall", "bridge", "broadcast", "self_study"]
FORMS: tuple[str, ...] = ("hall", "bridge", "broadcast", "self_study")

EventType = Literal["checkin", "checkout", "guests", "void"]


@dataclass(frozen=True, slots=True)
class Unit:
    """A party organisation: province committee, party committee or cell."""

    code: str
    name: str
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """A party member, known by the party card number (`code`)."""

    code: str
    full_name: str
    unit: str


@dataclass(frozen=True, slots=True)
class Requirements:
    """What completing a session needs besides attending: a reflection handed in, a quiz
    score of at least `quiz_pass`. Scores lie in 0..quiz_max (the session's range)."""

    reflection: bool = False
    quiz_pass: float | None = None
    quiz_max: float = 100.0


@dataclass(frozen=True, slots=True)
class PlanRule:
    """Which units owe an action plan after the session: those at `depth` of the unit tree
    (root = 0) inside the audience subtrees, and with `heads` each such unit's head too."""

    depth: int
    heads: bool = False
    due: datetime | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A study session. `expected` is filled in by the store when it is read; sessions
    stored before requirements existed read as nothing required and no plans owed."""

    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    audience: tuple[str, ...]
    late_after_minutes: int = 15
    makeup_for: int | None = None
    state: Literal["open", "closed"] = "open"
    closed_at: datetime | None = None
    expected: int = 0
    requires: Requirements = Requirements()
    plans: PlanRule | None = None

    @property
    def is_open(self) -> bool:
        return self.state == "open"


@dataclass(frozen=True, slots=True)
class Site:
    """A viewing point of one session: hall, bridge point, broadcast point or self-study."""

    id: int
    session_id: int
    name: str
    kind: str
    unit: str | None = None
    capacity: int | None = None


@dataclass(frozen=True, slots=True)
class NewSite:
    """A site about to be registered: what the store keeps, its coordinator token only hashed."""

    session_id: int
    name: str
    kind: str
    unit: str | None
    capacity: int | None
    token_hash: str


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event from a site. `received_at` is the server's arrival time."""

    id: str
    session_id: int
    site_id: int
    type: str
    ts: datetime | None
    received_at: datetime
    member: str | None = None
    count: int | None = None
    target: str | None = None
    voided: bool = False
    late_upload: bool = False


@dataclass(frozen=True, slots=True)
class Excuse:
    session_id: int
    member: str
    reason: str
    created_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a member handed in after a session: a reflection, a quiz score, and whether the
    cell secretary confirmed they studied on their own (`self_study`: counted as present,
    form self_study). `updated_at` is set by the store when the row is written."""

    session_id: int
    member: str
    reflection: bool = False
    quiz_score: float | None = None
    self_study: bool = False
    updated_at: datetime | None = None


#: Who owes an action plan: the unit's committee, or its head personally.
PLAN_KINDS: tuple[str, ...] = ("committee", "head")


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """An action plan a unit (`kind` "committee") or its head (`kind` "head") handed in after
    a session, as recorded by an organizer (`recorded_by`, a login)."""

    session_id: int
    unit: str
    kind: str
    handed_in_at: datetime
    recorded_by: str
    note: str | None = None


Role = Literal["viewer", "organizer", "admin"]
ROLES: tuple[str, ...] = ("viewer", "organizer", "admin")


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in. Their scope is the subtree of `unit`; `password_hash` is an
    argon2id hash and never leaves the service."""

    login: str
    full_name: str
    unit: str
    role: str
    active: bool = True
    password_hash: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change: who (`actor`: a login, `admin-token` or `site:<id>`), what, when,
    from which address. `unit` is the unit the change is about, so that each level sees the
    entries about its own subtree (None: only the whole tree sees it)."""

    at: datetime
    actor: str
    action: str
    session_id: int | None = None
    target: str | None = None
    detail: str | None = None
    address: str | None = None
    unit: str | None = None
