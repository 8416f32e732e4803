"""The PostgreSQL store, through an asyncpg pool.

Several instances may share one database: idempotency is the events' primary key
(`INSERT … ON CONFLICT DO NOTHING RETURNING id`), so a resend that races another
instance still lands once, and the loser answers `duplicate`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from streamsvc.domain.checkin import Facts, Outcome, TargetInfo, first_presence
from streamsvc.domain.models import Event, Member, Session, Site, Unit
from streamsvc.errors import StoreUnavailable
from streamsvc.ports import CheckinItem, Decider, NewSession
from streamsvc.storage import migrations
from streamsvc.storage.common import dump_audience, like_pattern, load_audience, search_text

__all__ = ["PostgresStore"]

logger = logging.getLogger(__name__)

DEADLOCK_RETRIES = 3


def _event_id(event: Event) -> str:
    return event.id


_SUBTREE = """
WITH RECURSIVE sub(code) AS (
    SELECT code FROM units WHERE code = ANY($1::text[])
    UNION SELECT u.code FROM units u JOIN sub ON u.parent = sub.code
)"""

_SESSION_COLS = (
    "id, title, starts_at, ends_at, audience, late_after_minutes, makeup_for, state, closed_at, "
    "frozen"
)
_EVENT_COLS = (
    "id, session_id, site_id, type, ts, received_at, member, count, target, voided, late_upload"
)
_SITE_COLS = "id, session_id, name, kind, unit, capacity"


def _session(row: Any, expected: int = 0) -> Session:
    return Session(
        id=row[0],
        title=row[1],
        starts_at=row[2],
        ends_at=row[3],
        audience=load_audience(row[4]),
        late_after_minutes=row[5],
        makeup_for=row[6],
        state=row[7],
        closed_at=row[8],
        expected=expected,
    )


def _site(row: Any) -> Site:
    return Site(row[0], row[1], row[2], row[3], row[4], row[5])


def _event(row: Any) -> Event:
    return Event(*row)


class PostgresStore:
    """`postgresql://user@host:port/db`."""

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._min, self._max = min_size, max_size
        self._site_names: dict[int, str] = {}

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        return self._pool

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self._min, max_size=self._max, command_timeout=60
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        try:
            await self.pool.fetchval("SELECT 1", timeout=2)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self.pool.acquire() as conn:
            # One migrator at a time when several instances start together.
            await conn.execute("SELECT pg_advisory_lock(4711)")
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, sql in migrations("postgres"):
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version) VALUES ($1)", version
                        )
                    applied.append(version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(4711)")
        return applied

    # -- settings ---------------------------------------------------------------------
    async def get_setting(self, key: str) -> str | None:
        return await self.pool.fetchval("SELECT value FROM settings WHERE key = $1", key)

    async def set_setting(self, key: str, value: str) -> None:
        await self.pool.execute(
            "INSERT INTO settings VALUES ($1, $2) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value",
            key,
            value,
        )

    # -- roster -----------------------------------------------------------------------
    async def list_units(self) -> list[Unit]:
        rows = await self.pool.fetch("SELECT code, name, parent FROM units ORDER BY code")
        return [Unit(*r) for r in rows]

    async def upsert_units(self, units: Sequence[Unit]) -> tuple[int, int]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "INSERT INTO units (code, name, parent) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) "
                "ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent = excluded.parent "
                "RETURNING (xmax = 0) AS created",
                [u.code for u in units],
                [u.name for u in units],
                [u.parent for u in units],
            )
        created = sum(1 for r in rows if r[0])
        return created, len(rows) - created

    async def member_codes_existing(self, codes: Sequence[str]) -> set[str]:
        rows = await self.pool.fetch(
            "SELECT code FROM members WHERE code = ANY($1::text[])", list(codes)
        )
        return {r[0] for r in rows}

    async def upsert_members(self, members: Sequence[Member]) -> tuple[int, int]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "INSERT INTO members (code, full_name, unit, search) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
                "ON CONFLICT (code) DO UPDATE SET full_name = excluded.full_name, "
                "unit = excluded.unit, search = excluded.search "
                "RETURNING (xmax = 0) AS created",
                [m.code for m in members],
                [m.full_name for m in members],
                [m.unit for m in members],
                [search_text(m.code, m.full_name) for m in members],
            )
        created = sum(1 for r in rows if r[0])
        return created, len(rows) - created

    async def search_members(
        self, unit: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Member], int]:
        prefix, where, args = "", [], []
        if unit is not None:
            prefix = _SUBTREE
            where.append("unit IN (SELECT code FROM sub)")
            args.append([unit])
        if query:
            args.append(like_pattern(query))
            where.append(f"search LIKE ${len(args)}")
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        async with self.pool.acquire() as conn:
            total = await conn.fetchval(f"{prefix} SELECT count(*) FROM members {cond}", *args)
            rows = await conn.fetch(
                f"{prefix} SELECT code, full_name, unit FROM members {cond} ORDER BY code "
                f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
                *args,
                limit,
                offset,
            )
        return [Member(*r) for r in rows], total

    async def get_members(self, codes: Iterable[str]) -> dict[str, Member]:
        rows = await self.pool.fetch(
            "SELECT code, full_name, unit FROM members WHERE code = ANY($1::text[])", list(codes)
        )
        return {r[0]: Member(*r) for r in rows}

    # -- sessions ---------------------------------------------------------------------
    async def _expected(self, conn: Any, session_id: int, frozen: bool, audience: str) -> int:
        if frozen:
            return await conn.fetchval(
                "SELECT count(*) FROM session_members WHERE session_id = $1", session_id
            )
        return await conn.fetchval(
            f"{_SUBTREE} SELECT count(*) FROM members WHERE unit IN (SELECT code FROM sub)",
            list(load_audience(audience)),
        )

    async def _load_session(self, conn: Any, session_id: int) -> Session | None:
        row = await conn.fetchrow(f"SELECT {_SESSION_COLS} FROM sessions WHERE id = $1", session_id)
        if row is None:
            return None
        return _session(row, await self._expected(conn, row[0], row[9], row[4]))

    async def create_session(self, new: NewSession, *, from_excused_of: int | None) -> Session:
        async with self.pool.acquire() as conn, conn.transaction():
            session_id = await conn.fetchval(
                "INSERT INTO sessions (title, starts_at, ends_at, audience, late_after_minutes, "
                "makeup_for, frozen) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                new.title,
                new.starts_at,
                new.ends_at,
                dump_audience(new.audience),
                new.late_after_minutes,
                new.makeup_for,
                from_excused_of is not None,
            )
            if from_excused_of is not None:
                await conn.execute(
                    "INSERT INTO session_members SELECT $1, member FROM excuses "
                    "WHERE session_id = $2",
                    session_id,
                    from_excused_of,
                )
            return await self._load_session(conn, session_id)  # type: ignore[return-value]

    async def get_session(self, session_id: int) -> Session | None:
        async with self.pool.acquire() as conn:
            return await self._load_session(conn, session_id)

    async def list_sessions(self) -> list[Session]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_SESSION_COLS} FROM sessions ORDER BY id")
            return [_session(r, await self._expected(conn, r[0], r[9], r[4])) for r in rows]

    async def close_session(self, session_id: int, closed_at: datetime) -> Session | None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT state, frozen, audience FROM sessions WHERE id = $1 FOR UPDATE",
                session_id,
            )
            if row is None:
                return None
            if row[0] != "closed":
                if not row[1]:
                    await conn.execute(
                        f"{_SUBTREE} INSERT INTO session_members SELECT $2, code FROM members "
                        "WHERE unit IN (SELECT code FROM sub)",
                        list(load_audience(row[2])),
                        session_id,
                    )
                await conn.execute(
                    "UPDATE sessions SET state = 'closed', closed_at = $1, frozen = TRUE "
                    "WHERE id = $2",
                    closed_at,
                    session_id,
                )
            return await self._load_session(conn, session_id)

    async def is_expected(self, session_id: int, member: str) -> bool:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT frozen, audience FROM sessions WHERE id = $1", session_id
            )
            if row is None:
                return False
            if row[0]:
                hit = await conn.fetchval(
                    "SELECT 1 FROM session_members WHERE session_id = $1 AND member = $2",
                    session_id,
                    member,
                )
            else:
                hit = await conn.fetchval(
                    f"{_SUBTREE} SELECT 1 FROM members WHERE code = $2 "
                    "AND unit IN (SELECT code FROM sub)",
                    list(load_audience(row[1])),
                    member,
                )
            return hit is not None

    # -- sites and excuses --------------------------------------------------------------
    async def create_site(
        self,
        session_id: int,
        name: str,
        kind: str,
        unit: str | None,
        capacity: int | None,
        token_hash: str,
    ) -> Site:
        row = await self.pool.fetchrow(
            "INSERT INTO sites (session_id, name, kind, unit, capacity, token_hash) "
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_SITE_COLS}",
            session_id,
            name,
            kind,
            unit,
            capacity,
            token_hash,
        )
        return _site(row)

    async def list_sites(self, session_id: int) -> list[Site]:
        rows = await self.pool.fetch(
            f"SELECT {_SITE_COLS} FROM sites WHERE session_id = $1 ORDER BY id", session_id
        )
        return [_site(r) for r in rows]

    async def site_by_token_hash(self, token_hash: str) -> Site | None:
        row = await self.pool.fetchrow(
            f"SELECT {_SITE_COLS} FROM sites WHERE token_hash = $1", token_hash
        )
        return _site(row) if row else None

    async def add_excuse(self, session_id: int, member: str, reason: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            present = await conn.fetchval(
                "SELECT 1 FROM events WHERE session_id = $1 AND member = $2 "
                "AND type = 'checkin' AND NOT voided LIMIT 1",
                session_id,
                member,
            )
            if present:
                return False
            await conn.execute(
                "INSERT INTO excuses (session_id, member, reason) VALUES ($1, $2, $3) "
                "ON CONFLICT (session_id, member) DO UPDATE SET reason = excluded.reason",
                session_id,
                member,
                reason,
            )
            return True

    async def list_excuses(self, session_id: int) -> dict[str, str]:
        rows = await self.pool.fetch(
            "SELECT member, reason FROM excuses WHERE session_id = $1", session_id
        )
        return {r[0]: r[1] for r in rows}

    # -- events -----------------------------------------------------------------------
    async def commit_events(
        self, items: Sequence[CheckinItem], decide: Decider, now: datetime
    ) -> tuple[list[Outcome], list[Event]]:
        for attempt in range(DEADLOCK_RETRIES):
            try:
                return await self._commit_events(items, decide, now)
            except asyncpg.exceptions.DeadlockDetectedError:
                # Writers insert in id order, so this should not happen; if another writer
                # still crosses ours, the whole group is decided again on fresh facts.
                if attempt == DEADLOCK_RETRIES - 1:
                    raise
                logger.warning("deadlock on a group of %d events; retrying", len(items))
        raise AssertionError("unreachable")

    async def _commit_events(
        self, items: Sequence[CheckinItem], decide: Decider, now: datetime
    ) -> tuple[list[Outcome], list[Event]]:
        async with self.pool.acquire() as conn, conn.transaction():
            facts = await self._facts(conn, items)
            outcomes, decided, voids = decide(items, facts, now)
            # One order for every writer (by id), so two transactions inserting the same ids
            # wait for each other instead of deadlocking.
            rows = sorted(decided, key=_event_id)
            if rows:
                inserted = await conn.fetch(
                    "INSERT INTO events (id, session_id, site_id, type, ts, received_at, member, "
                    "count, target, late_upload) SELECT * FROM unnest($1::text[], $2::bigint[], "
                    "$3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[], "
                    "$8::int[], $9::text[], $10::bool[]) ON CONFLICT (id) DO NOTHING RETURNING id",
                    [e.id for e in rows],
                    [e.session_id for e in rows],
                    [e.site_id for e in rows],
                    [e.type for e in rows],
                    [e.ts for e in rows],
                    [e.received_at for e in rows],
                    [e.member for e in rows],
                    [e.count for e in rows],
                    [e.target for e in rows],
                    [e.late_upload for e in rows],
                )
                if len(inserted) != len(rows):
                    # Another instance stored some of these ids between our read and write.
                    won = {r[0] for r in inserted}
                    decided = [e for e in decided if e.id in won]
                    lost = {it[2].id for it in items} - won
                    for outcome in outcomes:
                        if outcome.id in lost and outcome.result == "accepted":
                            outcome.result, outcome.member, outcome.already_present = (
                                "duplicate",
                                None,
                                None,
                            )
                            outcome.unit_name = None
            if voids:
                await conn.execute(
                    "UPDATE events SET voided = TRUE WHERE id = ANY($1::text[])", sorted(voids)
                )
        return outcomes, decided

    async def _facts(self, conn: Any, items: Sequence[CheckinItem]) -> Facts:
        ids = [it[2].id for it in items]
        stored = {
            r[0] for r in await conn.fetch("SELECT id FROM events WHERE id = ANY($1::text[])", ids)
        }
        session_ids = sorted({it[0] for it in items})
        sessions = {
            r[0]: _session(r)
            for r in await conn.fetch(
                f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ANY($1::bigint[])", session_ids
            )
        }
        codes = sorted({it[2].member for it in items if it[2].member})
        members: dict[str, Member] = {}
        unit_names: dict[str, str] = {}
        for code, full_name, unit, unit_name in await conn.fetch(
            "SELECT m.code, m.full_name, m.unit, u.name FROM members m "
            "JOIN units u ON u.code = m.unit WHERE m.code = ANY($1::text[])",
            codes,
        ):
            members[code] = Member(code, full_name, unit)
            unit_names[unit] = unit_name
        presence = {}
        if codes:
            rows = await conn.fetch(
                "SELECT session_id, member, site_id, ts FROM events "
                "WHERE session_id = ANY($1::bigint[]) AND member = ANY($2::text[]) "
                "AND type = 'checkin' AND NOT voided",
                session_ids,
                codes,
            )
            names = await self._names(conn, {r[2] for r in rows})
            for sid in session_ids:
                found = first_presence([(r[1], r[2], r[3]) for r in rows if r[0] == sid], names)
                presence.update({(sid, m): p for m, p in found.items()})
        target_ids = [it[2].target for it in items if it[2].target]
        targets = {}
        if target_ids:
            for r in await conn.fetch(
                "SELECT id, session_id, site_id, type, member, voided FROM events "
                "WHERE id = ANY($1::text[])",
                target_ids,
            ):
                targets[r[0]] = TargetInfo(r[0], r[1], r[2], r[3], r[4], r[5])
        return Facts(sessions, members, stored, presence, targets, unit_names=unit_names)

    async def _names(self, conn: Any, site_ids: set[int]) -> dict[int, str]:
        missing = [s for s in site_ids if s not in self._site_names]
        if missing:
            for r in await conn.fetch(
                "SELECT id, name FROM sites WHERE id = ANY($1::bigint[])", missing
            ):
                self._site_names[r[0]] = r[1]
        return self._site_names

    async def _iterate(self, sql: str, *args: Any) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            async for row in conn.cursor(sql, *args, prefetch=5000):
                yield row

    async def iter_events(
        self, session_id: int, *, by_member: bool = False
    ) -> AsyncIterator[Event]:
        order = "member, ts, id" if by_member else "received_at, id"
        async for row in self._iterate(
            f"SELECT {_EVENT_COLS} FROM events WHERE session_id = $1 ORDER BY {order}",
            session_id,
        ):
            yield _event(row)

    async def iter_expected_members(self, session_id: int) -> AsyncIterator[Member]:
        row = await self.pool.fetchrow(
            "SELECT frozen, audience FROM sessions WHERE id = $1", session_id
        )
        if row is None:
            return
        if row[0]:
            rows = self._iterate(
                "SELECT m.code, m.full_name, m.unit FROM session_members s "
                "JOIN members m ON m.code = s.member WHERE s.session_id = $1 ORDER BY m.code",
                session_id,
            )
        else:
            rows = self._iterate(
                f"{_SUBTREE} SELECT code, full_name, unit FROM members "
                "WHERE unit IN (SELECT code FROM sub) ORDER BY code",
                list(load_audience(row[1])),
            )
        async for r in rows:
            yield Member(*r)

    # -- attendance ---------------------------------------------------------------------
    async def list_unexpected_members(self, session_id: int) -> dict[str, Member]:
        """Members with a counted (not voided) check-in at the session who are not expected."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT frozen, audience FROM sessions WHERE id = $1", session_id
            )
            if row is None:
                return {}
            if row[0]:
                rows = await conn.fetch(
                    "SELECT code, full_name, unit FROM members WHERE code IN (SELECT member "
                    "FROM events WHERE session_id = $1 AND type = 'checkin' AND NOT voided) "
                    "AND code NOT IN (SELECT member FROM session_members WHERE session_id = $1)",
                    session_id,
                )
            else:
                rows = await conn.fetch(
                    f"{_SUBTREE} SELECT code, full_name, unit FROM members WHERE code IN "
                    "(SELECT member FROM events WHERE session_id = $2 AND type = 'checkin' "
                    "AND NOT voided) AND unit NOT IN (SELECT code FROM sub)",
                    list(load_audience(row[1])),
                    session_id,
                )
        return {r[0]: Member(*r) for r in rows}

    async def list_made_up(self, session_id: int) -> set[str]:
        """Members with a counted check-in at any make-up session of this one."""
        rows = await self.pool.fetch(
            "SELECT DISTINCT e.member FROM sessions s JOIN events e ON e.session_id = s.id "
            "WHERE s.makeup_for = $1 AND e.type = 'checkin' AND NOT e.voided "
            "AND e.member IS NOT NULL",
            session_id,
        )
        return {r[0] for r in rows}
