"""The embedded store: one SQLite file in WAL mode.

All writes go through one connection on one thread, so the event loop never blocks on
disk and SQLite never sees two writers. Reads use a second connection (WAL lets them run
beside a write). `synchronous=FULL`: a commit is on disk before the call returns, which is
what an acknowledgement promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

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
from streamsvc.errors import InvalidInput, StoreUnavailable
from streamsvc.ports import CheckinItem, Decider, NewSession
from streamsvc.storage import migration_scripts, sql
from streamsvc.storage.common import (
    ExpectedCounts,
    SiteNames,
    audit_from_row,
    audit_values,
    check_site_entries,
    chunks,
    dump_audience,
    event_from_row,
    evidence_from_row,
    evidence_values,
    facts_from_rows,
    from_us,
    like_pattern,
    member_from_row,
    plan_from_row,
    plan_values,
    search_text,
    session_from_row,
    session_rule_values,
    site_from_row,
    to_us,
    user_from_row,
    user_values,
)

__all__ = ["SqliteStore"]

T = TypeVar("T")


#: Primary result codes that mean the file cannot be reached or written just now, not that
#: the statement is wrong: busy or locked, read-only, disk I/O, disk full, cannot open.
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)

_EXPECTED_COUNT = sql.EXPECTED_COUNT.format(audience=sql.SQLITE_AUDIENCE)
_IS_EXPECTED = sql.IS_EXPECTED.format(audience=sql.SQLITE_AUDIENCE)
_EXPECTED_WITHIN = sql.EXPECTED_WITHIN.format(audience=sql.SQLITE_AUDIENCE)
_EXPECTED_MEMBERS = sql.EXPECTED_MEMBERS.format(audience=sql.SQLITE_AUDIENCE)
_FREEZE_EXPECTED = sql.FREEZE_EXPECTED.format(audience=sql.SQLITE_AUDIENCE)
_UNEXPECTED_MEMBERS = sql.UNEXPECTED_MEMBERS.format(audience=sql.SQLITE_AUDIENCE)
_EXPECTED_IN_UNITS = sql.EXPECTED_IN_UNITS.format(
    audience=sql.SQLITE_AUDIENCE, codes=sql.SQLITE_CODES
)
_EXPECTED_AMONG = sql.EXPECTED_AMONG.format(audience=sql.SQLITE_AUDIENCE, codes=sql.SQLITE_CODES)
_LIST_EVIDENCE_OF = sql.LIST_EVIDENCE_OF.format(codes=sql.SQLITE_CODES)
_EVIDENCE_EXISTING = sql.EVIDENCE_EXISTING.format(codes=sql.SQLITE_CODES)
_PLAN_EXISTS = "SELECT 1 FROM action_plans WHERE session_id = ? AND unit = ? AND kind = ?"
_BUMP_UNITS_VERSION, _BUMP_ROSTER_VERSION = (
    sql.BUMP_VERSION.format(key=key, next="CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)")
    for key in ("units_version", "roster_version")
)

#: Unlike PostgreSQL's, no `RETURNING id`: every row of a group is inserted (see
#: commit_events), and RETURNING means multi-row VALUES statements, which cost 2-5 us more
#: per event than executemany (measured: 1,000 rows 5.2 -> 10.7 ms).
_INSERT_EVENTS = (
    "INSERT INTO events (id, session_id, site_id, type, ts, received_at, member, count, "
    "target, late_upload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)


#: Each member's earliest counted check-in at the session, on the index
#: events_session_member (session_id, member, ts). With `min()`, SQLite takes the other
#: columns from the row holding the minimum: one row per member reaches Python, not one per
#: check-in.
_FIRST_CHECKINS = (
    "SELECT session_id, member, site_id, min(ts) FROM counted_checkins "
    "WHERE session_id = ? AND member {codes} GROUP BY member"
)
#: A check-in's time as stored, remembered: most events share their second with others.
_us_of = lru_cache(maxsize=4096)(to_us)


@lru_cache(maxsize=64)
def _in(count: int) -> str:
    return f"IN ({','.join('?' * count)})"


def _event_row(row: Sequence[Any]) -> Event:
    return event_from_row(row, from_us)


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """The file out of reach (locked, I/O, disk full) is `StoreUnavailable`, as on PostgreSQL."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF in _UNAVAILABLE_CODES:
            raise StoreUnavailable(f"the database is unavailable: {exc}") from exc
        raise


class SqliteStore:
    """`sqlite:///path/to/file.db`; `sqlite:///:memory:` is refused (two connections)."""

    #: Group-commit writer tasks: SQLite has one writer thread, a second would only queue.
    writers = 1

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._site_names = SiteNames()
        self._counts = ExpectedCounts()

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc:  # sqlite://relative/path
            path = parts.netloc + path
        elif path.startswith("/") and not url.startswith("sqlite:////"):
            path = path[1:]  # sqlite:///streamsvc.db is relative, sqlite:////abs is absolute
        if not path or path == ":memory:":
            raise InvalidInput("sqlite URL needs a file path, e.g. sqlite:///streamsvc.db")
        return cls(path)

    # -- plumbing ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        parent = Path(self.path).parent
        if not parent.exists():
            raise StoreUnavailable(f"folder {parent} does not exist")
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        with _reachable():
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            conn = self._wconn
            assert conn is not None, "store is not open"
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                # a full disk fails the COMMIT itself, and after SQLITE_FULL or IOERR SQLite
                # may or may not have rolled back (lang_transaction.html): end the transaction
                # either way, or every later write would fail ("cannot start a transaction
                # within a transaction") once space is freed; a failing ROLLBACK must not hide
                # the error that matters
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
            return result

        return await self._run(self._writer, call)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            assert self._rconn is not None, "store is not open"
            return fn(self._rconn, *args)

        return await self._run(self._reader, call)

    async def _fetchall(self, query: str, args: Sequence[Any] = ()) -> list[Any]:
        return await self._read(lambda c: c.execute(query, args).fetchall())

    async def _fetchone(self, query: str, args: Sequence[Any] = ()) -> Any:
        return await self._read(lambda c: c.execute(query, args).fetchone())

    async def open(self) -> None:
        try:
            self._wconn = await self._run(self._writer, self._connect)
            # Each check-in's event id (a UUID) lands on a random page of the id index, so a
            # group of thousands touches thousands of pages: past the default 2 MB cache each
            # became a read from the OS (measured: 54-60 -> 45-53 us per check-in at 400,000
            # events). The cache grows only as pages are used.
            await self._run(self._writer, self._wconn.execute, "PRAGMA cache_size=-65536")
            self._rconn = await self._run(self._reader, self._connect)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc

    async def close(self) -> None:
        for pool, conn in ((self._writer, self._wconn), (self._reader, self._rconn)):
            if conn is not None:
                await self._run(pool, conn.close)
        self._wconn = self._rconn = None
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)

    async def ping(self) -> None:
        try:
            await self._fetchone("SELECT 1")
        except (sqlite3.Error, AssertionError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def migrate(self) -> list[int]:
        def run(conn: sqlite3.Connection) -> list[int]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for version, script in migration_scripts("sqlite"):
                if version in done:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in script.split(";\n"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?)",
                        (version, to_us(datetime.now(UTC))),
                    )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                applied.append(version)
            return applied

        def call() -> list[int]:
            assert self._wconn is not None
            return run(self._wconn)

        return await self._run(self._writer, call)

    # -- settings ---------------------------------------------------------------------
    async def get_setting(self, key: str) -> str | None:
        row = await self._fetchone(sql.GET_SETTING, (key,))
        return str(row[0]) if row else None

    async def set_setting(self, key: str, value: str) -> None:
        await self._write(lambda c: c.execute(sql.SET_SETTING, (key, value)))

    # -- roster -----------------------------------------------------------------------
    async def list_units(self) -> list[Unit]:
        return [Unit(*r) for r in await self._fetchall(sql.LIST_UNITS)]

    async def upsert_units(
        self, units: Sequence[Unit], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]:
        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            existing = _existing(conn, "units", [u.code for u in units])
            conn.executemany(
                "INSERT INTO units (code, name, parent) VALUES (?, ?, ?) ON CONFLICT (code) DO "
                "UPDATE SET name = excluded.name, parent = excluded.parent",
                [(u.code, u.name, u.parent) for u in units],
            )
            conn.execute(_BUMP_UNITS_VERSION)
            conn.execute(_BUMP_ROSTER_VERSION)
            _append_audit(conn, audit)
            return len(units) - len(existing), len(existing)

        return await self._write(run)

    async def member_codes_existing(self, codes: Sequence[str]) -> set[str]:
        return await self._read(lambda c: _existing(c, "members", list(codes)))

    async def upsert_members(
        self, members: Sequence[Member], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]:
        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            existing = _existing(conn, "members", [m.code for m in members])
            conn.executemany(
                "INSERT INTO members (code, full_name, unit, search) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (code) DO UPDATE SET full_name = excluded.full_name, "
                "unit = excluded.unit, search = excluded.search",
                [(m.code, m.full_name, m.unit, search_text(m.code, m.full_name)) for m in members],
            )
            conn.execute(_BUMP_ROSTER_VERSION)
            _append_audit(conn, audit)
            return len(members) - len(existing), len(existing)

        return await self._write(run)

    async def search_members(
        self, unit: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Member], int]:
        def run(conn: sqlite3.Connection) -> tuple[list[Member], int]:
            prefix, where, args = "", [], []
            if unit is not None:
                prefix = sql.UNIT_SUBTREE
                where.append("unit IN (SELECT code FROM sub)")
                args.append(unit)
            if query:
                where.append("search LIKE ? ESCAPE '\\'")
                args.append(like_pattern(query))
            cond = f"WHERE {' AND '.join(where)}" if where else ""
            total = conn.execute(f"{prefix} SELECT count(*) FROM members {cond}", args).fetchone()
            rows = conn.execute(
                f"{prefix} SELECT {sql.MEMBER_COLS} FROM members {cond} "
                "ORDER BY code LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
            return [member_from_row(r) for r in rows], int(total[0])

        return await self._read(run)

    async def get_members(self, codes: Iterable[str]) -> dict[str, Member]:
        return await self._read(_members, list(codes))

    # -- sessions ---------------------------------------------------------------------
    def _load_session(self, conn: sqlite3.Connection, session_id: int) -> Session | None:
        row = conn.execute(sql.SESSION_BY_ID, (session_id,)).fetchone()
        if row is None:
            return None
        return session_from_row(row, from_us, self._expected(conn, row))

    def _expected(self, conn: sqlite3.Connection, row: Any) -> int:
        """A session row's `expected`, counted only when its stamp moved (`ExpectedCounts`)."""
        stamp = self._counts.stamp(row)
        count = self._counts.get(row[0], stamp)
        if count is None:
            count = _expected(conn, row[0])
            self._counts.put(row[0], stamp, count)
        return count

    async def create_session(
        self, new: NewSession, *, from_excused_of: int | None, audit: AuditEntry | None = None
    ) -> Session:
        def run(conn: sqlite3.Connection) -> Session | None:
            cur = conn.execute(
                "INSERT INTO sessions (title, starts_at, ends_at, audience, late_after_minutes, "
                f"makeup_for, frozen, created_at, {sql.SESSION_RULE_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.title,
                    to_us(new.starts_at),
                    to_us(new.ends_at),
                    dump_audience(new.audience),
                    new.late_after_minutes,
                    new.makeup_for,
                    int(from_excused_of is not None),
                    to_us(datetime.now(UTC)),
                    *session_rule_values(new.requires, new.plans, to_us),
                ),
            )
            session_id = cur.lastrowid
            assert session_id is not None
            if from_excused_of is not None:
                conn.execute(sql.FREEZE_EXCUSED, (session_id, from_excused_of))
            if audit is not None:
                _append_audit(conn, replace(audit, session_id=session_id))
            return self._load_session(conn, session_id)

        session = await self._write(run)
        assert session is not None
        return session

    async def get_session(self, session_id: int) -> Session | None:
        return await self._read(self._load_session, session_id)

    async def list_sessions(self) -> list[Session]:
        def run(conn: sqlite3.Connection) -> list[Session]:
            rows = conn.execute(sql.LIST_SESSIONS).fetchall()
            return [session_from_row(r, from_us, self._expected(conn, r)) for r in rows]

        return await self._read(run)

    async def close_session(
        self, session_id: int, closed_at: datetime, *, audit: AuditEntry | None = None
    ) -> Session | None:
        def run(conn: sqlite3.Connection) -> Session | None:
            row = conn.execute(sql.SESSION_STATE, (session_id,)).fetchone()
            if row is None:
                return None
            state, frozen = row
            if state != "closed":
                if not frozen:
                    conn.execute(_FREEZE_EXPECTED, (session_id,) * 3)
                conn.execute(
                    "UPDATE sessions SET state = 'closed', closed_at = ?, frozen = 1 WHERE id = ?",
                    (to_us(closed_at), session_id),
                )
            _append_audit(conn, audit)
            return self._load_session(conn, session_id)

        return await self._write(run)

    async def is_expected(self, session_id: int, member: str) -> bool:
        return await self._fetchone(_IS_EXPECTED, (session_id, session_id, member)) is not None

    async def count_expected_within(self, session_ids: Sequence[int], root: str) -> dict[int, int]:
        def run(conn: sqlite3.Connection) -> dict[int, int]:
            return {
                sid: int(conn.execute(_EXPECTED_WITHIN, (root, sid, sid)).fetchone()[0])
                for sid in session_ids
            }

        return await self._read(run)

    # -- sites and excuses --------------------------------------------------------------
    async def create_site(self, new: NewSite, *, audit: AuditEntry | None = None) -> Site:
        def run(conn: sqlite3.Connection) -> Site:
            cur = conn.execute(
                "INSERT INTO sites (session_id, name, kind, unit, capacity, token_hash, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    new.session_id,
                    new.name,
                    new.kind,
                    new.unit,
                    new.capacity,
                    new.token_hash,
                    to_us(datetime.now(UTC)),
                ),
            )
            assert cur.lastrowid is not None
            if audit is not None:
                _append_audit(conn, replace(audit, target=str(cur.lastrowid)))
            return Site(cur.lastrowid, new.session_id, new.name, new.kind, new.unit, new.capacity)

        return await self._write(run)

    async def create_sites(
        self, new: Sequence[NewSite], *, audit: Sequence[AuditEntry] = ()
    ) -> list[Site]:
        check_site_entries(new, audit)

        def run(conn: sqlite3.Connection) -> list[Site]:
            # ids given here, after the largest ever handed out: on the one writer, in one
            # transaction, no one else can take them, and executemany reports no row ids
            (last,) = conn.execute(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'sites'), 0),"
                " coalesce((SELECT max(id) FROM sites), 0))"
            ).fetchone()
            created = to_us(datetime.now(UTC))
            conn.executemany(
                "INSERT INTO sites (id, session_id, name, kind, unit, capacity, token_hash, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        last + i,
                        n.session_id,
                        n.name,
                        n.kind,
                        n.unit,
                        n.capacity,
                        n.token_hash,
                        created,
                    )
                    for i, n in enumerate(new, start=1)
                ],
            )
            _append_audit(
                conn, [replace(e, target=str(last + i)) for i, e in enumerate(audit, start=1)]
            )
            return [
                Site(last + i, n.session_id, n.name, n.kind, n.unit, n.capacity)
                for i, n in enumerate(new, start=1)
            ]

        return await self._write(run) if new else []

    async def reset_site_token(
        self, site_id: int, token_hash: str, *, audit: AuditEntry | None = None
    ) -> str | None:
        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(sql.SITE_TOKEN_HASH, (site_id,)).fetchone()
            if row is None:
                return None
            conn.execute(sql.RESET_SITE_TOKEN, (token_hash, site_id))
            _append_audit(conn, audit)
            return str(row[0])

        return await self._write(run)

    async def get_site(self, site_id: int) -> Site | None:
        row = await self._fetchone(sql.GET_SITE, (site_id,))
        return site_from_row(row) if row else None

    async def list_sites(self, session_id: int) -> list[Site]:
        return [site_from_row(r) for r in await self._fetchall(sql.LIST_SITES, (session_id,))]

    async def site_by_token_hash(self, token_hash: str) -> Site | None:
        row = await self._fetchone(sql.SITE_BY_TOKEN_HASH, (token_hash,))
        return site_from_row(row) if row else None

    async def add_excuse(
        self, session_id: int, member: str, reason: str, *, audit: AuditEntry | None = None
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            if conn.execute(sql.CHECKED_IN, (session_id, member)).fetchone():
                return False
            conn.execute(sql.ADD_EXCUSE, (session_id, member, reason, to_us(datetime.now(UTC))))
            _append_audit(conn, audit)
            return True

        return await self._write(run)

    async def delete_excuse(
        self, session_id: int, member: str, *, audit: AuditEntry | None = None
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            if not conn.execute(sql.DELETE_EXCUSE, (session_id, member)).fetchall():
                return False
            _append_audit(conn, audit)
            return True

        return await self._write(run)

    async def list_excuses(self, session_id: int) -> dict[str, str]:
        return {r[0]: r[1] for r in await self._fetchall(sql.EXCUSES, (session_id,))}

    # -- users and their sign-in tokens ---------------------------------------------------
    async def create_user(self, user: User, *, audit: AuditEntry | None = None) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            values = (*user_values(user), to_us(datetime.now(UTC)))
            if not conn.execute(sql.CREATE_USER, values).fetchall():
                return False
            _append_audit(conn, audit)
            return True

        return await self._write(run)

    async def get_user(self, login: str) -> User | None:
        row = await self._fetchone(sql.GET_USER, (login,))
        return user_from_row(row) if row else None

    async def list_users(self) -> list[User]:
        return [user_from_row(r) for r in await self._fetchall(sql.LIST_USERS)]

    async def save_user(
        self,
        user: User,
        *,
        revoke_tokens_at: datetime | None = None,
        audit: AuditEntry | None = None,
    ) -> list[str]:
        login, *values = user_values(user)

        def run(conn: sqlite3.Connection) -> list[str]:
            if not conn.execute(sql.SAVE_USER, (*values, login)).fetchall():
                return []  # no such user: nothing changed, so no entry
            revoked: list[str] = []
            if revoke_tokens_at is not None:
                rows = conn.execute(sql.REVOKE_USER_TOKENS, (to_us(revoke_tokens_at), login))
                revoked = sorted(r[0] for r in rows.fetchall())
            _append_audit(conn, audit)
            return revoked

        return await self._write(run)

    async def add_auth_token(
        self,
        token_hash: str,
        login: str,
        issued_at: datetime,
        expires_at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                sql.ADD_AUTH_TOKEN, (token_hash, login, to_us(issued_at), to_us(expires_at))
            )
            _append_audit(conn, audit)

        await self._write(run)

    async def auth_token(self, token_hash: str) -> tuple[User, datetime, datetime | None] | None:
        row = await self._fetchone(sql.AUTH_TOKEN, (token_hash,))
        if row is None:
            return None
        expires_at = from_us(row[6])
        assert expires_at is not None
        return user_from_row(row), expires_at, from_us(row[7])

    async def revoke_auth_token(
        self, token_hash: str, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            if not conn.execute(sql.REVOKE_AUTH_TOKEN, (to_us(at), token_hash)).fetchall():
                return False
            _append_audit(conn, audit)
            return True

        return await self._write(run)

    # -- the audit log ----------------------------------------------------------------
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            await self._write(_append_audit, entries)

    def iter_audit(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        session_id: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> AsyncIterator[AuditEntry]:
        query, args = sql.audit_query(
            to_us(start), to_us(end), session_id=session_id, actor=actor, action=action
        )
        return self._iterate(query, args, _audit_row)

    async def recent_failures(
        self, login: str, address: str | None, since: datetime
    ) -> tuple[list[datetime], list[datetime]]:
        def run(conn: sqlite3.Connection) -> tuple[list[datetime], list[datetime]]:
            after = to_us(since)
            by_login = conn.execute(sql.RECENT_FAILURES_BY_LOGIN, (login, after)).fetchall()
            by_address = (
                conn.execute(sql.RECENT_FAILURES_BY_ADDRESS, (address, after)).fetchall()
                if address is not None
                else []
            )
            return _times(by_login), _times(by_address)

        return await self._read(run)

    # -- events -----------------------------------------------------------------------
    async def commit_events(
        self, items: Sequence[CheckinItem], decide: Decider, now: datetime
    ) -> tuple[list[Outcome], list[Event]]:
        def run(conn: sqlite3.Connection) -> tuple[list[Outcome], list[Event]]:
            outcomes, rows, voids = decide(items, self._facts(conn, items), now)
            if rows:
                now_us = to_us(now)
                cursor = conn.executemany(
                    _INSERT_EVENTS,
                    [
                        (
                            e.id,
                            e.session_id,
                            e.site_id,
                            e.type,
                            _us_of(e.ts),
                            now_us if e.received_at is now else to_us(e.received_at),
                            e.member,
                            e.count,
                            e.target,
                            e.late_upload,
                        )
                        for e in rows
                    ],
                )
                if cursor.rowcount != len(rows):
                    # The facts were read in this IMMEDIATE transaction of the only writer,
                    # so no decided id can already be stored; if one was, nothing is kept
                    # and the devices resend.
                    raise RuntimeError(
                        f"{len(rows) - cursor.rowcount} of {len(rows)} decided events were "
                        "stored already"
                    )
            if voids:
                conn.executemany("UPDATE events SET voided = 1 WHERE id = ?", [(v,) for v in voids])
            return settle_inserted(outcomes, rows, {e.id for e in rows})

        return await self._write(run)

    def _facts(self, conn: sqlite3.Connection, items: Sequence[CheckinItem]) -> Facts:
        stored = _existing(conn, "events", [it[2].id for it in items], column="id")
        session_ids = sorted({it[0] for it in items})
        sessions = {
            r[0]: session_from_row(r, from_us)
            for r in conn.execute(sql.FACT_SESSIONS.format(ids=_in(len(session_ids))), session_ids)
        }
        member_rows: list[Any] = []
        for part in chunks(sorted({it[2].member for it in items if it[2].member})):
            member_rows += conn.execute(sql.FACT_MEMBERS.format(codes=_in(len(part))), part)
        checkin_rows: list[Any] = []
        for sid in session_ids:
            mine = sorted({it[2].member for it in items if it[0] == sid and it[2].member})
            for part in chunks(mine):
                checkin_rows += conn.execute(
                    _FIRST_CHECKINS.format(codes=_in(len(part))), (sid, *part)
                )
        for ids in chunks(self._site_names.missing(r[2] for r in checkin_rows)):
            self._site_names.add(conn.execute(sql.SITE_NAMES.format(ids=_in(len(ids))), ids))
        target_rows: list[Any] = []
        for part in chunks([it[2].target for it in items if it[2].target]):
            target_rows += conn.execute(sql.FACT_TARGETS.format(ids=_in(len(part))), part)
        return facts_from_rows(
            sessions,
            member_rows,
            stored,
            checkin_rows,
            self._site_names.names,
            target_rows,
            from_us,
        )

    async def _iterate(
        self, query: str, args: Sequence[Any], convert: Callable[[Any], T]
    ) -> AsyncIterator[T]:
        """Stream rows in chunks from a connection of its own, so exports do not block reads."""
        with _reachable():
            conn = await asyncio.to_thread(self._connect)
        try:
            with _reachable():
                cursor = await asyncio.to_thread(conn.execute, query, args)
            while True:
                with _reachable():
                    rows = await asyncio.to_thread(cursor.fetchmany, 5000)
                if not rows:
                    break
                for row in rows:
                    yield convert(row)
        finally:
            await asyncio.to_thread(conn.close)

    def iter_events(self, session_id: int, *, by_member: bool = False) -> AsyncIterator[Event]:
        order = sql.EVENTS_BY_MEMBER if by_member else sql.EVENTS_BY_ARRIVAL
        return self._iterate(sql.SESSION_EVENTS.format(order=order), (session_id,), _event_row)

    def iter_expected_members(self, session_id: int) -> AsyncIterator[Member]:
        return self._iterate(_EXPECTED_MEMBERS, (session_id, session_id), member_from_row)

    # -- attendance ---------------------------------------------------------------------
    async def list_unexpected_members(self, session_id: int) -> dict[str, Member]:
        """Members with a counted check-in at the session who are not expected."""
        rows = await self._fetchall(_UNEXPECTED_MEMBERS, (session_id,) * 3)
        return {r[0]: member_from_row(r) for r in rows}

    async def list_made_up(self, session_id: int) -> set[str]:
        """Members with a counted check-in at any make-up session of this one."""
        return {r[0] for r in await self._fetchall(sql.MADE_UP, (session_id,))}

    # -- study evidence, session rules, action plans ----------------------------------------
    async def update_session_rules(
        self,
        session_id: int,
        requires: Requirements,
        plans: PlanRule | None,
        *,
        audit: AuditEntry | None = None,
    ) -> Session | None:
        values = (*session_rule_values(requires, plans, to_us), session_id)

        def run(conn: sqlite3.Connection) -> Session | None:
            if not conn.execute(sql.UPDATE_SESSION_RULES, values).fetchall():
                return None
            _append_audit(conn, audit)
            return self._load_session(conn, session_id)

        return await self._write(run)

    async def upsert_evidence(
        self, rows: Sequence[Evidence], *, audit: AuditEntry | None = None
    ) -> tuple[int, int]:
        now = datetime.now(UTC)
        stamped = [r if r.updated_at else replace(r, updated_at=now) for r in rows]
        by_session: dict[int, list[str]] = {}
        for r in stamped:
            by_session.setdefault(r.session_id, []).append(r.member)

        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            existing = sum(
                len(conn.execute(_EVIDENCE_EXISTING, (sid, _json_codes(codes))).fetchall())
                for sid, codes in by_session.items()
            )
            conn.executemany(sql.UPSERT_EVIDENCE, [evidence_values(r, to_us) for r in stamped])
            _append_audit(conn, audit)
            return len(stamped) - existing, existing

        return await self._write(run)

    async def list_evidence(
        self, session_id: int, members: Sequence[str] | None = None
    ) -> dict[str, Evidence]:
        if members is None:
            rows = await self._fetchall(sql.LIST_EVIDENCE, (session_id,))
        else:
            rows = await self._fetchall(_LIST_EVIDENCE_OF, (_json_codes(members), session_id))
        return {r[1]: evidence_from_row(r, from_us) for r in rows}

    async def list_makeup_evidence(self, session_id: int) -> dict[str, Evidence]:
        rows = await self._fetchall(sql.MAKEUP_EVIDENCE, (session_id,))
        return {r[1]: evidence_from_row(r, from_us) for r in rows}

    async def expected_members_in(self, session_id: int, units: Sequence[str]) -> list[Member]:
        if not units:
            return []
        rows = await self._fetchall(
            _EXPECTED_IN_UNITS, (_json_codes(units), session_id, session_id)
        )
        return [member_from_row(r) for r in rows]

    async def expected_among(self, session_id: int, codes: Sequence[str]) -> set[str]:
        if not codes:
            return set()
        rows = await self._fetchall(_EXPECTED_AMONG, (_json_codes(codes), session_id, session_id))
        return {r[0] for r in rows}

    async def save_plan(self, plan: ActionPlan, *, audit: AuditEntry | None = None) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            key = (plan.session_id, plan.unit, plan.kind)
            created = conn.execute(_PLAN_EXISTS, key).fetchone() is None
            conn.execute(sql.SAVE_PLAN, plan_values(plan, to_us))
            _append_audit(conn, audit)
            return created

        return await self._write(run)

    async def delete_plan(
        self, session_id: int, unit: str, kind: str, *, audit: AuditEntry | None = None
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            if not conn.execute(sql.DELETE_PLAN, (session_id, unit, kind)).fetchall():
                return False
            _append_audit(conn, audit)
            return True

        return await self._write(run)

    async def list_plans(self, session_id: int) -> list[ActionPlan]:
        rows = await self._fetchall(sql.LIST_PLANS, (session_id,))
        return [plan_from_row(r, from_us) for r in rows]


def _json_codes(codes: Iterable[str]) -> str:
    """A list of codes as the one JSON parameter of `sql.SQLITE_CODES`."""
    return json.dumps(list(codes), ensure_ascii=False)


def _audit_row(row: Sequence[Any]) -> AuditEntry:
    return audit_from_row(row, from_us)


def _times(rows: Iterable[Sequence[Any]]) -> list[datetime]:
    return [t for r in rows if (t := from_us(r[0])) is not None]


def _append_audit(
    conn: sqlite3.Connection, entries: AuditEntry | Sequence[AuditEntry] | None
) -> None:
    """Store entries in the caller's transaction (None: nothing to record)."""
    if entries is None:
        return
    if isinstance(entries, AuditEntry):
        entries = [entries]
    conn.executemany(sql.INSERT_AUDIT, [audit_values(e, to_us) for e in entries])


def _expected(conn: sqlite3.Connection, session_id: int) -> int:
    return int(conn.execute(_EXPECTED_COUNT, (session_id, session_id)).fetchone()[0])


def _existing(
    conn: sqlite3.Connection, table: str, codes: list[str], column: str = "code"
) -> set[str]:
    found: set[str] = set()
    for part in chunks(codes):
        found.update(
            r[0]
            for r in conn.execute(
                f"SELECT {column} FROM {table} WHERE {column} {_in(len(part))}", part
            )
        )
    return found


def _members(conn: sqlite3.Connection, codes: list[str]) -> dict[str, Member]:
    out: dict[str, Member] = {}
    for part in chunks(codes):
        for row in conn.execute(
            f"SELECT {sql.MEMBER_COLS} FROM members WHERE code {_in(len(part))}", part
        ):
            out[row[0]] = member_from_row(row)
    return out
