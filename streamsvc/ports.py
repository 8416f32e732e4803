"""The two ports the service stands on: the store and the live-count bus.

Each has two real implementations (SQLite / PostgreSQL in `storage/`, in-process /
Redis in `bus/`), and one contract test suite runs against both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from streamsvc.domain.checkin import Facts, Incoming, Outcome
from streamsvc.domain.models import Event, Member, Session, Site, Unit

__all__ = ["Bus", "CheckinItem", "Decider", "NewSession", "Store"]

#: (session id, site, event) as handed to the group committer.
CheckinItem = tuple[int, Site, Incoming]
Decider = Callable[
    [Sequence[CheckinItem], Facts, datetime], tuple[list[Outcome], list[Event], list[str]]
]


class NewSession(Protocol):
    title: str
    starts_at: datetime
    ends_at: datetime
    audience: tuple[str, ...]
    late_after_minutes: int
    makeup_for: int | None


class Store(Protocol):
    """Durable state. Every write is committed before the call returns.

    A store answers facts and leaves decisions to `domain/`; a database out of reach is
    `StoreUnavailable` from every method, whichever backend it is.
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
    async def upsert_units(self, units: Sequence[Unit]) -> tuple[int, int]: ...
    async def member_codes_existing(self, codes: Sequence[str]) -> set[str]: ...
    async def upsert_members(self, members: Sequence[Member]) -> tuple[int, int]: ...
    async def search_members(
        self, unit: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Member], int]: ...
    async def get_members(self, codes: Iterable[str]) -> dict[str, Member]: ...

    # sessions, sites, excuses
    async def create_session(self, new: NewSession, *, from_excused_of: int | None) -> Session: ...
    async def get_session(self, session_id: int) -> Session | None: ...
    async def list_sessions(self) -> list[Session]: ...
    async def close_session(self, session_id: int, closed_at: datetime) -> Session | None: ...
    async def is_expected(self, session_id: int, member: str) -> bool:
        """Whether the member is expected at the session (false for an unknown session)."""
        ...

    async def create_site(
        self,
        session_id: int,
        name: str,
        kind: str,
        unit: str | None,
        capacity: int | None,
        token_hash: str,
    ) -> Site: ...
    async def list_sites(self, session_id: int) -> list[Site]: ...
    async def site_by_token_hash(self, token_hash: str) -> Site | None: ...
    async def add_excuse(self, session_id: int, member: str, reason: str) -> bool: ...

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
