"""Plain data shared by the core, the stores and the web layer.

Times are always timezone-aware UTC datetimes inside the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "FORMS",
    "ROLES",
    "AuditEntry",
    "Event",
    "EventType",
    "Excuse",
    "Form",
    "Member",
    "NewSite",
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
class Session:
    """A study session. `expected` is filled in by the store when it is read."""

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
