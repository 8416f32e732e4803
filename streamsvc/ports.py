"""The two ports the service stands on: the store and the live-count bus.

Each has two real implementations (SQLite / PostgreSQL in `storage/`, in-process /
Redis in `bus/`), and one contract test suite runs against both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from streamsvc.domain.checkin import Facts, Incoming, Outcome
from streamsvc.domain.models import (
    ActionPlan,
    AuditEntry,
    Event,
    Evidence,
    Member,
    NewSite,
    PlanRule,
    Requirements,
    Session,
    Site,
    Unit,
    User,
)

__all__ = ["Bus", "CheckinItem", "Decider", "NewSession", "Store"]

#: (session id, site, event) as handed to the group committer.
CheckinItem = tuple[int, Site, Incoming]
Decider = Callable[
    [Sequence[CheckinItem], Facts, datetime], tuple[list[Outcome], list[Event], list[str]]
]


class NewSession(Protocol):
    """What a store needs to create a session; read-only, so a frozen dataclass is one."""

    @property
    def title(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def audience(self) -> tuple[str, ...]: ...
    @property
    def late_after_minutes(self) -> int: ...
    @property
    def makeup_for(self) -> int | None: ...
    @property
    def requires(self) -> Requirements: ...
    @property
    def plans(self) -> PlanRule | None: ...


class Store(Protocol):
    """Durable state. Every write is committed before the call returns.

    A store answers facts and leaves decisions to `domain/`; a database out of reach is
    `StoreUnavailable` from every method, whichever backend it is. A write that takes an
    `audit` entry stores it in the same transaction as the change: no change without its
    entry, no entry without its change.
    """

    @property
    def writers(self) -> int:
        """How many group-commit writer tasks suit this backend (its writes in flight)."""
        ...

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def migrate(self) -> list[int]: ...
    async def ping(self) -> None: ...

    # settings
    async def get_setting(self, key: str) -> str | None: ...
    async def set_setting(self, key: str, value: str) -> None: ...

    # roster
    async def list_units(self) -> list[Unit]: ...
    async def upsert_units(
        self, units: Sequence[Unit], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]:
        """Upsert by code; also bumps the `units_version` setting, in the same transaction,
        so that every instance's cached unit tree sees the change."""
        ...

    async def member_codes_existing(self, codes: Sequence[str]) -> set[str]: ...
    async def upsert_members(
        self, members: Sequence[Member], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]: ...
    async def search_members(
        self, unit: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Member], int]: ...
    async def get_members(self, codes: Iterable[str]) -> dict[str, Member]: ...

    # sessions, sites, excuses
    async def create_session(
        self, new: NewSession, *, from_excused_of: int | None, audit: AuditEntry | None = None
    ) -> Session:
        """The entry's `session_id` is filled in with the new session's id."""
        ...

    async def get_session(self, session_id: int) -> Session | None: ...
    async def list_sessions(self) -> list[Session]: ...
    async def close_session(
        self, session_id: int, closed_at: datetime, *, audit: AuditEntry | None = None
    ) -> Session | None: ...
    async def is_expected(self, session_id: int, member: str) -> bool:
        """Whether the member is expected at the session (false for an unknown session)."""
        ...

    async def count_expected_within(self, session_ids: Sequence[int], root: str) -> dict[int, int]:
        """For each session, how many of its expected members have a unit in the subtree of
        `root`: `expected` as a caller scoped to that subtree sees it (0 for an unknown
        session)."""
        ...

    async def create_site(self, new: NewSite, *, audit: AuditEntry | None = None) -> Site:
        """The entry's `target` is filled in with the new site's id."""
        ...

    async def create_sites(
        self, new: Sequence[NewSite], *, audit: Sequence[AuditEntry] = ()
    ) -> list[Site]:
        """Register many sites in one transaction (all or none), in the order given; the
        entries, one per site in the same order, get each site's id as `target`."""
        ...

    async def reset_site_token(
        self, site_id: int, token_hash: str, *, audit: AuditEntry | None = None
    ) -> str | None:
        """Give the site a new token hash; the old hash, or None for an unknown site."""
        ...

    async def get_site(self, site_id: int) -> Site | None: ...

    async def list_sites(self, session_id: int) -> list[Site]: ...
    async def site_by_token_hash(self, token_hash: str) -> Site | None: ...
    async def add_excuse(
        self, session_id: int, member: str, reason: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    async def delete_excuse(
        self, session_id: int, member: str, *, audit: AuditEntry | None = None
    ) -> bool:
        """Withdraw an excuse; False (and no entry) when there was none."""
        ...

    # users and their sign-in tokens
    async def create_user(self, user: User, *, audit: AuditEntry | None = None) -> bool:
        """False when the login is taken (nothing written)."""
        ...

    async def get_user(self, login: str) -> User | None: ...
    async def list_users(self) -> list[User]:
        """Every user, by login."""
        ...

    async def save_user(
        self,
        user: User,
        *,
        revoke_tokens_at: datetime | None = None,
        audit: AuditEntry | None = None,
    ) -> list[str]:
        """Replace the user's row (by login); with `revoke_tokens_at`, revoke every token of
        theirs still valid. The hashes of the tokens revoked."""
        ...

    async def add_auth_token(
        self,
        token_hash: str,
        login: str,
        issued_at: datetime,
        expires_at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> None: ...
    async def auth_token(self, token_hash: str) -> tuple[User, datetime, datetime | None] | None:
        """(its user, expires_at, revoked_at) of a sign-in token, or None if unknown."""
        ...

    async def revoke_auth_token(
        self, token_hash: str, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...

    # the audit log
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...
    def iter_audit(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        session_id: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> AsyncIterator[AuditEntry]:
        """Entries with start <= at < end, newest first, streamed; voided check-ins are
        read from the events themselves (`checkin_voided`, actor `site:<id>`)."""
        ...

    async def recent_failures(
        self, login: str, address: str | None, since: datetime
    ) -> tuple[list[datetime], list[datetime]]:
        """Times of `login_failed` entries since `since`, for this login and from this address."""
        ...

    # events
    async def commit_events(
        self, items: Sequence[CheckinItem], decide: Decider, now: datetime
    ) -> tuple[list[Outcome], list[Event]]: ...
    def iter_events(self, session_id: int, *, by_member: bool = False) -> AsyncIterator[Event]:
        """The session's events by (received_at, id), or by (member, ts, id) with `by_member`
        (code point order, as Python compares strings), streamed."""
        ...

    def iter_expected_members(self, session_id: int) -> AsyncIterator[Member]:
        """The expected members by code (code point order), streamed: frozen once closed."""
        ...

    # attendance
    async def list_excuses(self, session_id: int) -> dict[str, str]: ...
    async def list_unexpected_members(self, session_id: int) -> dict[str, Member]: ...
    async def list_made_up(self, session_id: int) -> set[str]: ...

    # study evidence, session rules, action plans
    async def update_session_rules(
        self,
        session_id: int,
        requires: Requirements,
        plans: PlanRule | None,
        *,
        audit: AuditEntry | None = None,
    ) -> Session | None:
        """Replace what completing the session needs and which units owe a plan, closed or
        not (the reconcile reads them when exporting); None (and no entry) for an unknown
        session."""
        ...

    async def upsert_evidence(
        self, rows: Sequence[Evidence], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]:
        """(created, updated): each row replaces the stored one of its (session, member)
        whole, so the service merges a partial upload with what is stored first; one row per
        (session, member). `updated_at` is the row's, or the time of the write if None."""
        ...

    async def list_evidence(
        self, session_id: int, members: Sequence[str] | None = None
    ) -> dict[str, Evidence]:
        """The evidence handed in at the session by member: of every member, or of these."""
        ...

    async def list_makeup_evidence(self, session_id: int) -> dict[str, Evidence]:
        """The evidence handed in at the make-up sessions of this one (`makeup_for =
        session_id`), one per member, the most recently updated: a made-up member completes
        the session on what they handed in at the make-up (each row keeps its own
        session_id)."""
        ...

    async def expected_members_in(self, session_id: int, units: Sequence[str]) -> list[Member]:
        """The session's expected members whose unit is one of `units` (a site's subtree),
        by code: a check-in page's list, read without reading the whole audience."""
        ...

    async def expected_among(self, session_id: int, codes: Sequence[str]) -> set[str]:
        """Which of these members are expected at the session (`sql.EXPECTED`), in one pass
        however many: an upload of 100,000 rows is checked at once, not member by member."""
        ...

    async def save_plan(self, plan: ActionPlan, *, audit: AuditEntry | None = None) -> bool:
        """Record a unit's plan of a kind: True when new, False when it replaced the one
        recorded before (a correction)."""
        ...

    async def delete_plan(
        self, session_id: int, unit: str, kind: str, *, audit: AuditEntry | None = None
    ) -> bool:
        """Withdraw a plan recorded by mistake; False (and no entry) when there was none."""
        ...

    async def list_plans(self, session_id: int) -> list[ActionPlan]:
        """The session's plans by (unit, kind)."""
        ...


class Bus(Protocol):
    """Carries the live hub's messages to every instance, as opaque bytes: what they say and
    how is `streamsvc.bus.codec`'s business, not the transport's."""

    name: str

    @property
    def shared(self) -> bool:
        """Whether another instance may be listening."""
        ...

    async def start(
        self,
        on_message: Callable[[bytes], Awaitable[None]],
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None: ...
    async def publish(self, message: bytes) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self) -> None: ...
    def health(self) -> str: ...
