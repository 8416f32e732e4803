"""The PostgreSQL store, through an asyncpg pool.

Several instances may share one database: idempotency is the events' primary key
(`INSERT … ON CONFLICT DO NOTHING RETURNING id`), so a resend that races another
instance still lands once, and the loser answers `duplicate`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg
import orjson

from streamsvc.domain.checkin import Facts, Outcome, settle_inserted
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
from streamsvc.errors import StoreUnavailable
from streamsvc.ports import CheckinItem, Decider, NewSession
from streamsvc.storage import migration_scripts, sql
from streamsvc.storage.common import (
    ExpectedCounts,
    SiteNames,
    as_is,
    audit_from_row,
    audit_values,
    check_site_entries,
    dump_audience,
    event_from_row,
    evidence_from_row,
    facts_from_rows,
    like_pattern,
    member_from_row,
    plan_from_row,
    plan_values,
    search_text,
    session_from_row,
    session_rule_values,
    site_from_row,
    user_from_row,
    user_values,
)
from streamsvc.storage.sql import numbered

__all__ = ["UNREACHABLE", "PostgresStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    #: A connection lent by the pool.
    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]

DEADLOCK_RETRIES = 3
#: Seconds a new pool connection may take. asyncpg's default is 60: a database host that
#: drops packets (a failover, a partition) would hold every reader and writer that long.
CONNECT_TIMEOUT = 5.0

#: Errors that mean the database is out of reach, not that the statement is wrong. OSError
#: covers refused and reset connections and TimeoutError (a pool acquire that timed out).
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionDoesNotExistError,
)


def _expected_sql(text: str) -> str:
    """A query asking `sql.EXPECTED`, in PostgreSQL's dialect."""
    return numbered(text.format(audience=sql.POSTGRES_AUDIENCE))


_UNIT_SUBTREE = numbered(sql.UNIT_SUBTREE)
_GET_SETTING = numbered(sql.GET_SETTING)
_SET_SETTING = numbered(sql.SET_SETTING)
_SESSION_BY_ID = numbered(sql.SESSION_BY_ID)
_SESSION_STATE = numbered(sql.SESSION_STATE) + " FOR UPDATE"
_EXPECTED_COUNT = _expected_sql(sql.EXPECTED_COUNT)
_IS_EXPECTED = _expected_sql(sql.IS_EXPECTED)
_EXPECTED_WITHIN = _expected_sql(sql.EXPECTED_WITHIN)
_EXPECTED_MEMBERS = _expected_sql(sql.EXPECTED_MEMBERS)
_FREEZE_EXPECTED = _expected_sql(sql.FREEZE_EXPECTED)
_FREEZE_EXCUSED = numbered(sql.FREEZE_EXCUSED)
_UNEXPECTED_MEMBERS = _expected_sql(sql.UNEXPECTED_MEMBERS)
_MADE_UP = numbered(sql.MADE_UP)
_CHECKED_IN = numbered(sql.CHECKED_IN)
_ADD_EXCUSE = numbered(sql.ADD_EXCUSE)
_EXCUSES = numbered(sql.EXCUSES)
_LIST_SITES = numbered(sql.LIST_SITES)
_SITE_BY_TOKEN_HASH = numbered(sql.SITE_BY_TOKEN_HASH)
_GET_SITE = numbered(sql.GET_SITE)
_SITE_TOKEN_HASH = numbered(sql.SITE_TOKEN_HASH) + " FOR UPDATE"
_RESET_SITE_TOKEN = numbered(sql.RESET_SITE_TOKEN)
_DELETE_EXCUSE = numbered(sql.DELETE_EXCUSE)
_BUMP_UNITS_VERSION, _BUMP_ROSTER_VERSION = (
    sql.BUMP_VERSION.format(key=key, next="(settings.value::bigint + 1)::text")
    for key in ("units_version", "roster_version")
)
_GET_USER = numbered(sql.GET_USER)
_CREATE_USER = numbered(sql.CREATE_USER)
_SAVE_USER = numbered(sql.SAVE_USER)
_REVOKE_USER_TOKENS = numbered(sql.REVOKE_USER_TOKENS)
_ADD_AUTH_TOKEN = numbered(sql.ADD_AUTH_TOKEN)
_AUTH_TOKEN = numbered(sql.AUTH_TOKEN)
_REVOKE_AUTH_TOKEN = numbered(sql.REVOKE_AUTH_TOKEN)
_RECENT_FAILURES_BY_LOGIN = numbered(sql.RECENT_FAILURES_BY_LOGIN)
_RECENT_FAILURES_BY_ADDRESS = numbered(sql.RECENT_FAILURES_BY_ADDRESS)
_UPDATE_SESSION_RULES = numbered(sql.UPDATE_SESSION_RULES)
_EXPECTED_IN_UNITS = numbered(
    sql.EXPECTED_IN_UNITS.format(audience=sql.POSTGRES_AUDIENCE, codes=sql.POSTGRES_CODES)
)
_EXPECTED_AMONG = numbered(
    sql.EXPECTED_AMONG.format(audience=sql.POSTGRES_AUDIENCE, codes=sql.POSTGRES_CODES)
)
_LIST_EVIDENCE = numbered(sql.LIST_EVIDENCE)
_LIST_EVIDENCE_OF = numbered(sql.LIST_EVIDENCE_OF.format(codes=sql.POSTGRES_CODES))
_MAKEUP_EVIDENCE = numbered(sql.MAKEUP_EVIDENCE)
#: Evidence rows as one JSON text (see `_IDS` on why not arrays); `created` per row inserted.
_UPSERT_EVIDENCE = (
    f"INSERT INTO evidence ({sql.EVIDENCE_COLS}) SELECT {sql.EVIDENCE_COLS} FROM "
    "json_to_recordset($1::json) AS x (session_id bigint, member text, reflection bool, "
    "quiz_score double precision, self_study bool, updated_at timestamptz) "
    "ON CONFLICT (session_id, member) DO UPDATE SET reflection = excluded.reflection, "
    "quiz_score = excluded.quiz_score, self_study = excluded.self_study, "
    "updated_at = excluded.updated_at RETURNING (xmax = 0) AS created"
)
_SAVE_PLAN = numbered(sql.SAVE_PLAN) + " RETURNING (xmax = 0) AS created"
_DELETE_PLAN = numbered(sql.DELETE_PLAN)
_LIST_PLANS = numbered(sql.LIST_PLANS)
#: Entries as one array per column: one statement, however many (a bulk upload of sites
#: brings one entry per site).
_INSERT_AUDIT = (
    f"INSERT INTO audit ({sql.AUDIT_COLS}) SELECT * FROM unnest($1::timestamptz[], "
    "$2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[])"
)
_EVENTS = {
    by_member: numbered(sql.SESSION_EVENTS.format(order=order))
    for by_member, order in ((False, sql.EVENTS_BY_ARRIVAL), (True, sql.EVENTS_BY_MEMBER))
}
# The write path hands PostgreSQL each list as one JSON text rather than an array: asyncpg
# checks every element of an array parameter against three abstract base classes, which
# cost more than everything else it does per event (py-spy, bench/checkin a).
_IDS = "ARRAY(SELECT json_array_elements_text(?::json))"
#: Each (session, member)'s earliest counted check-in, looked up one pair at a time: the
#: LIMIT keeps the lookup a nested loop on events_session_member with both columns as index
#: conditions, whatever the statistics say. (`session_id = ANY(…) AND member = ANY(…)` let
#: the planner, when `events` was last analyzed nearly empty, search by session alone and
#: filter every check-in of the session against the batch: 500 ms for 1,000 events.)
_FIRST_CHECKINS = (
    "SELECT w.session_id, w.member, p.site_id, p.ts "
    "FROM json_to_recordset(?::json) AS w (session_id bigint, member text) "
    "CROSS JOIN LATERAL (SELECT c.site_id, c.ts FROM counted_checkins c "
    "WHERE c.session_id = w.session_id AND c.member = w.member ORDER BY c.ts LIMIT 1) p"
)
#: Every fact a group is decided on in one round trip: one row, each column an array of the
#: rows one of the fact queries returns.
_FACTS = numbered(
    "SELECT "
    + ", ".join(
        f"ARRAY(SELECT f FROM ({query}) f)"
        for query in (
            sql.FACT_STORED.format(ids=f"= ANY({_IDS})"),
            sql.FACT_SESSIONS.format(ids="= ANY(?::bigint[])"),
            sql.FACT_MEMBERS.format(codes=f"= ANY({_IDS})"),
            _FIRST_CHECKINS,
            sql.FACT_TARGETS.format(ids=f"= ANY({_IDS})"),
        )
    )
)
#: Imported rows from which the table's statistics are refreshed at once (`_analyze`).
ANALYZE_FROM = 10_000
_SITE_NAMES = numbered(sql.SITE_NAMES.format(ids="= ANY(?::bigint[])"))
#: The group's events inserted (in id order, the same for every writer, so two statements
#: inserting the same ids wait for each other instead of deadlocking) and the voided
#: check-ins marked, in one statement: one round trip, its own transaction. A void's target
#: inserted by the same statement is inserted voided, as the UPDATE sees only rows stored
#: before the statement began. Answers the ids inserted.
_WRITE_EVENTS = (
    "WITH batch AS (SELECT * FROM json_to_recordset($1::json) AS x (id text, "
    "session_id bigint, site_id bigint, type text, ts timestamptz, received_at timestamptz, "
    "member text, count int, target text, late_upload bool)), "
    "inserted AS (INSERT INTO events (id, session_id, site_id, type, ts, received_at, "
    "member, count, target, late_upload, voided) SELECT id, session_id, site_id, type, ts, "
    "received_at, member, count, target, late_upload, id = ANY($2::text[]) FROM batch "
    "ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id), "
    "voided AS (UPDATE events SET voided = TRUE WHERE id = ANY($2::text[])) "
    "SELECT ARRAY(SELECT id FROM inserted)"
)


def _json_list(values: Iterable[str | None]) -> str:
    """A JSON array of strings, for `_IDS`."""
    return orjson.dumps(list(values)).decode()


def _event_row(row: Any) -> Event:
    return event_from_row(row, as_is)


def _audit_row(row: Any) -> AuditEntry:
    return audit_from_row(row, as_is)


async def _append_audit(
    conn: Connection, entries: AuditEntry | Sequence[AuditEntry] | None
) -> None:
    """Store entries in the caller's transaction (None: nothing to record)."""
    if entries is None:
        return
    if isinstance(entries, AuditEntry):
        entries = [entries]
    if entries:
        columns = zip(*(audit_values(e, as_is) for e in entries), strict=True)
        await conn.execute(_INSERT_AUDIT, *(list(c) for c in columns))


async def _keep_session(_conn: asyncpg.Connection[Any]) -> None:
    """The pool's reset on release, in place of asyncpg's `RESET ALL; CLOSE ALL; UNLISTEN *;
    SELECT pg_advisory_unlock_all()`: a round trip per release, 6% of an instance's CPU at the
    national peak (two releases per group commit). Nothing here leaves session state behind:
    no SET, LISTEN or cursor outside a transaction, and the one advisory lock (migrations) is
    unlocked in a `finally`; asyncpg still rolls back a transaction left open."""


def _unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"the database is unavailable: {exc}")


class PostgresStore:
    """`postgresql://user@host:port/db`.

    Every method reaches the database through `_connection()`, the one place where a
    database out of reach becomes `StoreUnavailable`.
    """

    #: Group-commit writer tasks: two transactions in flight keep the server busy while
    #: the next group is decided.
    writers = 2

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._min, self._max = min_size, max_size
        self._site_names = SiteNames()
        self._counts = ExpectedCounts()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        try:
            async with self.pool.acquire() as conn:
                yield conn
        except UNREACHABLE as exc:
            raise _unavailable(exc) from exc

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        async with self._connection() as conn:
            return list(await conn.fetch(query, *args))

    async def _fetchrow(self, query: str, *args: Any) -> Any:
        async with self._connection() as conn:
            return await conn.fetchrow(query, *args)

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min,
                max_size=self._max,
                command_timeout=60,
                timeout=CONNECT_TIMEOUT,
                reset=_keep_session,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def pool_use(self) -> tuple[int, int, int]:
        """(connections open, of them lent out, the most the pool opens), for `/metrics`:
        read from the pool when scraped, nothing counted per query."""
        pool = self._pool
        if pool is None:
            return 0, 0, self._max
        size = pool.get_size()
        return size, size - pool.get_idle_size(), pool.get_max_size()

    async def ping(self) -> None:
        try:
            async with self._connection() as conn:
                await conn.fetchval("SELECT 1", timeout=2)
        except asyncpg.PostgresError as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._connection() as conn:
            # One migrator at a time when several instances start together.
            await conn.execute("SELECT pg_advisory_lock(4711)")
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, script in migration_scripts("postgres"):
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(script)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version) VALUES ($1)", version
                        )
                    applied.append(version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(4711)")
        return applied

    # -- settings ---------------------------------------------------------------------
    async def get_setting(self, key: str) -> str | None:
        row = await self._fetchrow(_GET_SETTING, key)
        return str(row[0]) if row else None

    async def set_setting(self, key: str, value: str) -> None:
        async with self._connection() as conn:
            await conn.execute(_SET_SETTING, key, value)

    # -- roster -----------------------------------------------------------------------
    async def list_units(self) -> list[Unit]:
        return [Unit(*r) for r in await self._fetch(sql.LIST_UNITS)]

    async def upsert_units(
        self, units: Sequence[Unit], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]:
        async with self._connection() as conn, conn.transaction():
            rows = await conn.fetch(
                "INSERT INTO units (code, name, parent) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) "
                "ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent = excluded.parent "
                "RETURNING (xmax = 0) AS created",
                [u.code for u in units],
                [u.name for u in units],
                [u.parent for u in units],
            )
            await conn.execute(_BUMP_UNITS_VERSION)
            await conn.execute(_BUMP_ROSTER_VERSION)
            await _append_audit(conn, audit)
        created = sum(1 for r in rows if r[0])
        return created, len(rows) - created

    async def member_codes_existing(self, codes: Sequence[str]) -> set[str]:
        rows = await self._fetch(
            "SELECT code FROM members WHERE code = ANY($1::text[])", list(codes)
        )
        return {r[0] for r in rows}

    async def upsert_members(
        self, members: Sequence[Member], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]:
        async with self._connection() as conn, conn.transaction():
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
            await conn.execute(_BUMP_ROSTER_VERSION)
            await _append_audit(conn, audit)
        if len(members) >= ANALYZE_FROM:
            await self._analyze("members")
        created = sum(1 for r in rows if r[0])
        return created, len(rows) - created

    async def _analyze(self, table: str) -> None:
        """Fresh planner statistics after a big import, not left to autovacuum (which may be
        off, or minutes behind): the day's first queries then plan on the real table."""
        async with self._connection() as conn:
            await conn.execute(f"ANALYZE {table}")

    async def search_members(
        self, unit: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Member], int]:
        prefix, where, args = "", [], []
        if unit is not None:
            prefix = _UNIT_SUBTREE
            where.append("unit IN (SELECT code FROM sub)")
            args.append(unit)
        if query:
            args.append(like_pattern(query))
            where.append(f"search LIKE ${len(args)}")
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        async with self._connection() as conn:
            total = await conn.fetchval(f"{prefix} SELECT count(*) FROM members {cond}", *args)
            rows = await conn.fetch(
                f"{prefix} SELECT {sql.MEMBER_COLS} FROM members {cond} ORDER BY code "
                f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
                *args,
                limit,
                offset,
            )
        return [member_from_row(r) for r in rows], int(total)

    async def get_members(self, codes: Iterable[str]) -> dict[str, Member]:
        rows = await self._fetch(
            f"SELECT {sql.MEMBER_COLS} FROM members WHERE code = ANY($1::text[])", list(codes)
        )
        return {r[0]: member_from_row(r) for r in rows}

    # -- sessions ---------------------------------------------------------------------
    async def _load_session(self, conn: Connection, session_id: int) -> Session | None:
        row = await conn.fetchrow(_SESSION_BY_ID, session_id)
        if row is None:
            return None
        return session_from_row(row, as_is, await self._expected(conn, row))

    async def _expected(self, conn: Connection, row: Any) -> int:
        """A session row's `expected`, counted only when its stamp moved (`ExpectedCounts`)."""
        stamp = self._counts.stamp(row)
        count = self._counts.get(row[0], stamp)
        if count is None:
            count = int(await conn.fetchval(_EXPECTED_COUNT, row[0], row[0]))
            self._counts.put(row[0], stamp, count)
        return count

    async def create_session(
        self, new: NewSession, *, from_excused_of: int | None, audit: AuditEntry | None = None
    ) -> Session:
        async with self._connection() as conn, conn.transaction():
            session_id = await conn.fetchval(
                "INSERT INTO sessions (title, starts_at, ends_at, audience, late_after_minutes, "
                f"makeup_for, frozen, {sql.SESSION_RULE_COLS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                new.title,
                new.starts_at,
                new.ends_at,
                dump_audience(new.audience),
                new.late_after_minutes,
                new.makeup_for,
                from_excused_of is not None,
                *session_rule_values(new.requires, new.plans, as_is),
            )
            if from_excused_of is not None:
                await conn.execute(_FREEZE_EXCUSED, session_id, from_excused_of)
            if audit is not None:
                await _append_audit(conn, replace(audit, session_id=session_id))
            session = await self._load_session(conn, session_id)
        assert session is not None
        return session

    async def get_session(self, session_id: int) -> Session | None:
        async with self._connection() as conn:
            return await self._load_session(conn, session_id)

    async def list_sessions(self) -> list[Session]:
        async with self._connection() as conn:
            return [
                session_from_row(r, as_is, await self._expected(conn, r))
                for r in await conn.fetch(sql.LIST_SESSIONS)
            ]

    async def close_session(
        self, session_id: int, closed_at: datetime, *, audit: AuditEntry | None = None
    ) -> Session | None:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(_SESSION_STATE, session_id)
            if row is None:
                return None
            state, frozen = row
            if state != "closed":
                if not frozen:
                    await conn.execute(_FREEZE_EXPECTED, session_id, session_id, session_id)
                await conn.execute(
                    "UPDATE sessions SET state = 'closed', closed_at = $1, frozen = TRUE "
                    "WHERE id = $2",
                    closed_at,
                    session_id,
                )
            await _append_audit(conn, audit)
            return await self._load_session(conn, session_id)

    async def is_expected(self, session_id: int, member: str) -> bool:
        return await self._fetchrow(_IS_EXPECTED, session_id, session_id, member) is not None

    async def count_expected_within(self, session_ids: Sequence[int], root: str) -> dict[int, int]:
        async with self._connection() as conn:
            return {
                sid: int(await conn.fetchval(_EXPECTED_WITHIN, root, sid, sid))
                for sid in session_ids
            }

    # -- sites and excuses --------------------------------------------------------------
    async def create_site(self, new: NewSite, *, audit: AuditEntry | None = None) -> Site:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO sites (session_id, name, kind, unit, capacity, token_hash) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {sql.SITE_COLS}",
                new.session_id,
                new.name,
                new.kind,
                new.unit,
                new.capacity,
                new.token_hash,
            )
            assert row is not None  # INSERT … RETURNING of one row
            site = site_from_row(row)
            if audit is not None:
                await _append_audit(conn, replace(audit, target=str(site.id)))
        return site

    async def create_sites(
        self, new: Sequence[NewSite], *, audit: Sequence[AuditEntry] = ()
    ) -> list[Site]:
        check_site_entries(new, audit)
        if not new:
            return []
        # arrays rather than executemany (82,000 against 71,000 rows/s measured), and rows
        # matched back by their unique token hash, since RETURNING promises no order; the
        # sites and their entries in one transaction
        async with self._connection() as conn, conn.transaction():
            rows = await conn.fetch(
                "INSERT INTO sites (session_id, name, kind, unit, capacity, token_hash) "
                "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], "
                f"$6::text[]) RETURNING {sql.SITE_COLS}, token_hash",
                [n.session_id for n in new],
                [n.name for n in new],
                [n.kind for n in new],
                [n.unit for n in new],
                [n.capacity for n in new],
                [n.token_hash for n in new],
            )
            by_hash = {r["token_hash"]: site_from_row(r) for r in rows}
            sites = [by_hash[n.token_hash] for n in new]
            await _append_audit(
                conn, [replace(e, target=str(s.id)) for e, s in zip(audit, sites, strict=False)]
            )
        return sites

    async def reset_site_token(
        self, site_id: int, token_hash: str, *, audit: AuditEntry | None = None
    ) -> str | None:
        async with self._connection() as conn, conn.transaction():
            old: str | None = await conn.fetchval(_SITE_TOKEN_HASH, site_id)
            if old is None:
                return None
            await conn.execute(_RESET_SITE_TOKEN, token_hash, site_id)
            await _append_audit(conn, audit)
        return old

    async def get_site(self, site_id: int) -> Site | None:
        row = await self._fetchrow(_GET_SITE, site_id)
        return site_from_row(row) if row else None

    async def list_sites(self, session_id: int) -> list[Site]:
        return [site_from_row(r) for r in await self._fetch(_LIST_SITES, session_id)]

    async def site_by_token_hash(self, token_hash: str) -> Site | None:
        row = await self._fetchrow(_SITE_BY_TOKEN_HASH, token_hash)
        return site_from_row(row) if row else None

    async def add_excuse(
        self, session_id: int, member: str, reason: str, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._connection() as conn, conn.transaction():
            if await conn.fetchval(_CHECKED_IN, session_id, member):
                return False
            await conn.execute(_ADD_EXCUSE, session_id, member, reason, datetime.now(UTC))
            await _append_audit(conn, audit)
            return True

    async def delete_excuse(
        self, session_id: int, member: str, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._connection() as conn, conn.transaction():
            if await conn.fetchval(_DELETE_EXCUSE, session_id, member) is None:
                return False
            await _append_audit(conn, audit)
            return True

    async def list_excuses(self, session_id: int) -> dict[str, str]:
        return {r[0]: r[1] for r in await self._fetch(_EXCUSES, session_id)}

    # -- users and their sign-in tokens ---------------------------------------------------
    async def create_user(self, user: User, *, audit: AuditEntry | None = None) -> bool:
        async with self._connection() as conn, conn.transaction():
            created = await conn.fetchval(_CREATE_USER, *user_values(user), datetime.now(UTC))
            if created is None:
                return False
            await _append_audit(conn, audit)
            return True

    async def get_user(self, login: str) -> User | None:
        row = await self._fetchrow(_GET_USER, login)
        return user_from_row(row) if row else None

    async def list_users(self) -> list[User]:
        return [user_from_row(r) for r in await self._fetch(sql.LIST_USERS)]

    async def save_user(
        self,
        user: User,
        *,
        revoke_tokens_at: datetime | None = None,
        audit: AuditEntry | None = None,
    ) -> list[str]:
        login, *values = user_values(user)
        async with self._connection() as conn, conn.transaction():
            if await conn.fetchval(_SAVE_USER, *values, login) is None:
                return []  # no such user: nothing changed, so no entry
            revoked: list[str] = []
            if revoke_tokens_at is not None:
                rows = await conn.fetch(_REVOKE_USER_TOKENS, revoke_tokens_at, login)
                revoked = sorted(r[0] for r in rows)
            await _append_audit(conn, audit)
        return revoked

    async def add_auth_token(
        self,
        token_hash: str,
        login: str,
        issued_at: datetime,
        expires_at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_ADD_AUTH_TOKEN, token_hash, login, issued_at, expires_at)
            await _append_audit(conn, audit)

    async def auth_token(self, token_hash: str) -> tuple[User, datetime, datetime | None] | None:
        row = await self._fetchrow(_AUTH_TOKEN, token_hash)
        if row is None:
            return None
        return user_from_row(row), row[6], row[7]

    async def revoke_auth_token(
        self, token_hash: str, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._connection() as conn, conn.transaction():
            if await conn.fetchval(_REVOKE_AUTH_TOKEN, at, token_hash) is None:
                return False
            await _append_audit(conn, audit)
            return True

    # -- the audit log ----------------------------------------------------------------
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            async with self._connection() as conn:
                await _append_audit(conn, entries)

    def iter_audit(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        session_id: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> AsyncIterator[AuditEntry]:
        query, args = sql.audit_query(start, end, session_id=session_id, actor=actor, action=action)
        return self._iterate(numbered(query), args, _audit_row)

    async def recent_failures(
        self, login: str, address: str | None, since: datetime
    ) -> tuple[list[datetime], list[datetime]]:
        async with self._connection() as conn:
            by_login = await conn.fetch(_RECENT_FAILURES_BY_LOGIN, login, since)
            by_address = (
                await conn.fetch(_RECENT_FAILURES_BY_ADDRESS, address, since)
                if address is not None
                else []
            )
        return [r[0] for r in by_login], [r[0] for r in by_address]

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
        # No transaction around the read and the write: under READ COMMITTED each statement
        # sees what was committed when it began either way, and the write is one statement.
        # An event another instance stores in between is settled below (`settle_inserted`).
        async with self._connection() as conn:
            outcomes, decided, voids = decide(items, await self._facts(conn, items), now)
            if not decided and not voids:
                return outcomes, []
            # orjson writes each Event (a dataclass) as an object, times in RFC 3339
            inserted: list[str] = await conn.fetchval(
                _WRITE_EVENTS, orjson.dumps(decided).decode(), sorted(voids)
            )
        lost = len(inserted) != len(decided)
        return settle_inserted(outcomes, decided, set(inserted) if lost else inserted)

    async def _facts(self, conn: Connection, items: Sequence[CheckinItem]) -> Facts:
        pairs = {(it[0], it[2].member) for it in items if it[2].member}
        row = await conn.fetchrow(
            _FACTS,
            _json_list([it[2].id for it in items]),
            sorted({it[0] for it in items}),
            _json_list({member for _, member in pairs}),
            orjson.dumps([{"session_id": s, "member": m} for s, m in pairs]).decode(),
            _json_list([it[2].target for it in items if it[2].target]),
        )
        assert row is not None  # a SELECT without FROM answers one row
        stored, session_rows, member_rows, checkin_rows, target_rows = row
        missing = self._site_names.missing(r[2] for r in checkin_rows)
        if missing:
            self._site_names.add(await conn.fetch(_SITE_NAMES, missing))
        return facts_from_rows(
            {r[0]: session_from_row(r, as_is) for r in session_rows},
            member_rows,
            {r[0] for r in stored},
            checkin_rows,
            self._site_names.names,
            target_rows,
            as_is,
        )

    async def _iterate(
        self, query: str, args: Sequence[Any], convert: Callable[[Any], T]
    ) -> AsyncIterator[T]:
        async with self._connection() as conn, conn.transaction(readonly=True):
            async for row in conn.cursor(query, *args, prefetch=5000):
                yield convert(row)

    def iter_events(self, session_id: int, *, by_member: bool = False) -> AsyncIterator[Event]:
        return self._iterate(_EVENTS[by_member], (session_id,), _event_row)

    def iter_expected_members(self, session_id: int) -> AsyncIterator[Member]:
        return self._iterate(_EXPECTED_MEMBERS, (session_id, session_id), member_from_row)

    # -- attendance ---------------------------------------------------------------------
    async def list_unexpected_members(self, session_id: int) -> dict[str, Member]:
        """Members with a counted check-in at the session who are not expected."""
        rows = await self._fetch(_UNEXPECTED_MEMBERS, session_id, session_id, session_id)
        return {r[0]: member_from_row(r) for r in rows}

    async def list_made_up(self, session_id: int) -> set[str]:
        """Members with a counted check-in at any make-up session of this one."""
        return {r[0] for r in await self._fetch(_MADE_UP, session_id)}

    # -- study evidence, session rules, action plans ----------------------------------------
    async def update_session_rules(
        self,
        session_id: int,
        requires: Requirements,
        plans: PlanRule | None,
        *,
        audit: AuditEntry | None = None,
    ) -> Session | None:
        values = session_rule_values(requires, plans, as_is)
        async with self._connection() as conn, conn.transaction():
            if await conn.fetchval(_UPDATE_SESSION_RULES, *values, session_id) is None:
                return None
            await _append_audit(conn, audit)
            return await self._load_session(conn, session_id)

    async def upsert_evidence(
        self, rows: Sequence[Evidence], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]:
        now = datetime.now(UTC)
        # orjson writes each Evidence (a dataclass) as an object, times in RFC 3339
        batch = orjson.dumps([r if r.updated_at else replace(r, updated_at=now) for r in rows])
        async with self._connection() as conn, conn.transaction():
            created = await conn.fetch(_UPSERT_EVIDENCE, batch.decode()) if rows else []
            await _append_audit(conn, audit)
        new = sum(1 for r in created if r[0])
        return new, len(created) - new

    async def list_evidence(
        self, session_id: int, members: Sequence[str] | None = None
    ) -> dict[str, Evidence]:
        if members is None:
            rows = await self._fetch(_LIST_EVIDENCE, session_id)
        else:
            rows = await self._fetch(_LIST_EVIDENCE_OF, _json_list(members), session_id)
        return {r[1]: evidence_from_row(r, as_is) for r in rows}

    async def list_makeup_evidence(self, session_id: int) -> dict[str, Evidence]:
        rows = await self._fetch(_MAKEUP_EVIDENCE, session_id)
        return {r[1]: evidence_from_row(r, as_is) for r in rows}

    async def expected_members_in(self, session_id: int, units: Sequence[str]) -> list[Member]:
        if not units:
            return []
        rows = await self._fetch(_EXPECTED_IN_UNITS, _json_list(units), session_id, session_id)
        return [member_from_row(r) for r in rows]

    async def expected_among(self, session_id: int, codes: Sequence[str]) -> set[str]:
        if not codes:
            return set()
        rows = await self._fetch(_EXPECTED_AMONG, _json_list(codes), session_id, session_id)
        return {r[0] for r in rows}

    async def save_plan(self, plan: ActionPlan, *, audit: AuditEntry | None = None) -> bool:
        async with self._connection() as conn, conn.transaction():
            created = await conn.fetchval(_SAVE_PLAN, *plan_values(plan, as_is))
            await _append_audit(conn, audit)
        return bool(created)

    async def delete_plan(
        self, session_id: int, unit: str, kind: str, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._connection() as conn, conn.transaction():
            if await conn.fetchval(_DELETE_PLAN, session_id, unit, kind) is None:
                return False
            await _append_audit(conn, audit)
            return True

    async def list_plans(self, session_id: int) -> list[ActionPlan]:
        return [plan_from_row(r, as_is) for r in await self._fetch(_LIST_PLANS, session_id)]
