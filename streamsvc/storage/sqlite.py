"""The embedded store: one SQLite file in WAL mode.

All writes go through one connection on one thread, so the event loop never blocks on
disk and SQLite never sees two writers. Reads use a second connection (WAL lets them run
beside a write). `synchronous=FULL`: a commit is on disk before the call returns, which is
what an acknowledgement promises.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from streamsvc.domain.checkin import Facts, Outcome, TargetInfo, first_presence
from streamsvc.domain.models import Event, Member, Session, Site, Unit
from streamsvc.errors import InvalidInput, StoreUnavailable
from streamsvc.ports import CheckinItem, Decider, NewSession
from streamsvc.storage import migrations
from streamsvc.storage.common import (
    chunks,
    dump_audience,
    from_us,
    like_pattern,
    load_audience,
    search_text,
    to_us,
)

__all__ = ["SqliteStore"]

T = TypeVar("T")

_SUBTREE = """
WITH RECURSIVE sub(code) AS (
    SELECT code FROM units WHERE code IN (SELECT value FROM json_each(?))
    UNION SELECT u.code FROM units u JOIN sub ON u.parent = sub.code
)"""

_SESSION_COLS = (
    "id, title, starts_at, ends_at, audience, late_after_minutes, makeup_for, state, closed_at, "
    "frozen"
)


def _session(row: sqlite3.Row | tuple, expected: int = 0) -> Session:
    return Session(
        id=row[0],
        title=row[1],
        starts_at=from_us(row[2]),  # type: ignore[arg-type]
        ends_at=from_us(row[3]),  # type: ignore[arg-type]
        audience=load_audience(row[4]),
        late_after_minutes=row[5],
        makeup_for=row[6],
        state=row[7],
        closed_at=from_us(row[8]),
        expected=expected,
    )


def _site(row: tuple) -> Site:
    return Site(row[0], row[1], row[2], row[3], row[4], row[5])


_EVENT_COLS = (
    "id, session_id, site_id, type, ts, received_at, member, count, target, voided, late_upload"
)


def _event(row: tuple) -> Event:
    return Event(
        row[0],
        row[1],
        row[2],
        row[3],
        from_us(row[4]),
        from_us(row[5]),  # type: ignore[arg-type]
        row[6],
        row[7],
        row[8],
        bool(row[9]),
        bool(row[10]),
    )


class SqliteStore:
    """`sqlite:///path/to/file.db`; `sqlite:///:memory:` is refused (two connections)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._site_names: dict[int, str] = {}
        self._lock = threading.Lock()

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
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            conn = self._wconn
            assert conn is not None, "store is not open"
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(self._writer, call)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            assert self._rconn is not None, "store is not open"
            return fn(self._rconn, *args)

        return await self._run(self._reader, call)

    async def open(self) -> None:
        try:
            self._wconn = await self._run(self._writer, self._connect)
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
            await self._read(lambda c: c.execute("SELECT 1").fetchone())
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
            for version, sql in migrations("sqlite"):
                if version in done:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in sql.split(";\n"):
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
        row = await self._read(
            lambda c: c.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        )
        return row[0] if row else None

    async def set_setting(self, key: str, value: str) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                "excluded.value",
                (key, value),
            )
        )

    # -- roster -----------------------------------------------------------------------
    async def list_units(self) -> list[Unit]:
        rows = await self._read(
            lambda c: c.execute("SELECT code, name, parent FROM units ORDER BY code").fetchall()
        )
        return [Unit(*r) for r in rows]

    async def upsert_units(self, units: Sequence[Unit]) -> tuple[int, int]:
        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            existing = _existing(conn, "units", [u.code for u in units])
            conn.executemany(
                "INSERT INTO units (code, name, parent) VALUES (?, ?, ?) ON CONFLICT (code) DO "
                "UPDATE SET name = excluded.name, parent = excluded.parent",
                [(u.code, u.name, u.parent) for u in units],
            )
            return len(units) - len(existing), len(existing)

        return await self._write(run)

    async def member_codes_existing(self, codes: Sequence[str]) -> set[str]:
        return await self._read(lambda c: _existing(c, "members", list(codes)))

    async def upsert_members(self, members: Sequence[Member]) -> tuple[int, int]:
        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            existing = _existing(conn, "members", [m.code for m in members])
            conn.executemany(
                "INSERT INTO members (code, full_name, unit, search) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (code) DO UPDATE SET full_name = excluded.full_name, "
                "unit = excluded.unit, search = excluded.search",
                [(m.code, m.full_name, m.unit, search_text(m.code, m.full_name)) for m in members],
            )
            return len(members) - len(existing), len(existing)

        return await self._write(run)

    async def search_members(
        self, unit: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Member], int]:
        def run(conn: sqlite3.Connection) -> tuple[list[Member], int]:
            prefix, where, args = "", [], []
            if unit is not None:
                prefix = _SUBTREE.replace("(SELECT value FROM json_each(?))", "(?)")
                where.append("unit IN (SELECT code FROM sub)")
                args.append(unit)
            if query:
                where.append("search LIKE ? ESCAPE '\\'")
                args.append(like_pattern(query))
            cond = f"WHERE {' AND '.join(where)}" if where else ""
            total = conn.execute(f"{prefix} SELECT count(*) FROM members {cond}", args).fetchone()
            rows = conn.execute(
                f"{prefix} SELECT code, full_name, unit FROM members {cond} "
                "ORDER BY code LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
            return [Member(*r) for r in rows], total[0]

        return await self._read(run)

    async def get_members(self, codes: Iterable[str]) -> dict[str, Member]:
        return await self._read(_members, list(codes))

    # -- sessions ---------------------------------------------------------------------
    def _expected(
        self, conn: sqlite3.Connection, session_id: int, frozen: bool, audience: str
    ) -> int:
        if frozen:
            row = conn.execute(
                "SELECT count(*) FROM session_members WHERE session_id = ?", (session_id,)
            ).fetchone()
        else:
            row = conn.execute(
                f"{_SUBTREE} SELECT count(*) FROM members WHERE unit IN (SELECT code FROM sub)",
                (audience,),
            ).fetchone()
        return row[0]

    def _load_session(self, conn: sqlite3.Connection, session_id: int) -> Session | None:
        row = conn.execute(
            f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None:
            return None
        return _session(row, self._expected(conn, row[0], bool(row[9]), row[4]))

    async def create_session(self, new: NewSession, *, from_excused_of: int | None) -> Session:
        def run(conn: sqlite3.Connection) -> Session:
            cur = conn.execute(
                "INSERT INTO sessions (title, starts_at, ends_at, audience, late_after_minutes, "
                "makeup_for, frozen, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.title,
                    to_us(new.starts_at),
                    to_us(new.ends_at),
                    dump_audience(new.audience),
                    new.late_after_minutes,
                    new.makeup_for,
                    int(from_excused_of is not None),
                    to_us(datetime.now(UTC)),
                ),
            )
            session_id = cur.lastrowid
            if from_excused_of is not None:
                conn.execute(
                    "INSERT INTO session_members SELECT ?, member FROM excuses "
                    "WHERE session_id = ?",
                    (session_id, from_excused_of),
                )
            return self._load_session(conn, session_id)  # type: ignore[arg-type,return-value]

        return await self._write(run)

    async def get_session(self, session_id: int) -> Session | None:
        return await self._read(self._load_session, session_id)

    async def list_sessions(self) -> list[Session]:
        def run(conn: sqlite3.Connection) -> list[Session]:
            rows = conn.execute(f"SELECT {_SESSION_COLS} FROM sessions ORDER BY id").fetchall()
            return [_session(r, self._expected(conn, r[0], bool(r[9]), r[4])) for r in rows]

        return await self._read(run)

    async def close_session(self, session_id: int, closed_at: datetime) -> Session | None:
        def run(conn: sqlite3.Connection) -> Session | None:
            row = conn.execute(
                "SELECT state, frozen, audience FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                return None
            if row[0] != "closed":
                if not row[1]:
                    # Freeze who was expected, so later roster changes do not rewrite history.
                    conn.execute(
                        f"{_SUBTREE} INSERT INTO session_members SELECT ?, code FROM members "
                        "WHERE unit IN (SELECT code FROM sub)",
                        (row[2], session_id),
                    )
                conn.execute(
                    "UPDATE sessions SET state = 'closed', closed_at = ?, frozen = 1 WHERE id = ?",
                    (to_us(closed_at), session_id),
                )
            return self._load_session(conn, session_id)

        return await self._write(run)

    async def is_expected(self, session_id: int, member: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT frozen, audience FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                return False
            if row[0]:
                hit = conn.execute(
                    "SELECT 1 FROM session_members WHERE session_id = ? AND member = ?",
                    (session_id, member),
                ).fetchone()
            else:
                hit = conn.execute(
                    f"{_SUBTREE} SELECT 1 FROM members WHERE code = ? "
                    "AND unit IN (SELECT code FROM sub)",
                    (row[1], member),
                ).fetchone()
            return hit is not None

        return await self._read(run)

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
        def run(conn: sqlite3.Connection) -> Site:
            cur = conn.execute(
                "INSERT INTO sites (session_id, name, kind, unit, capacity, token_hash, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, name, kind, unit, capacity, token_hash, to_us(datetime.now(UTC))),
            )
            return Site(cur.lastrowid, session_id, name, kind, unit, capacity)  # type: ignore[arg-type]

        return await self._write(run)

    async def list_sites(self, session_id: int) -> list[Site]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT id, session_id, name, kind, unit, capacity FROM sites "
                "WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
        )
        return [_site(r) for r in rows]

    async def site_by_token_hash(self, token_hash: str) -> Site | None:
        row = await self._read(
            lambda c: c.execute(
                "SELECT id, session_id, name, kind, unit, capacity FROM sites WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        )
        return _site(row) if row else None

    async def add_excuse(self, session_id: int, member: str, reason: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            present = conn.execute(
                "SELECT 1 FROM events WHERE session_id = ? AND member = ? AND type = 'checkin' "
                "AND voided = 0 LIMIT 1",
                (session_id, member),
            ).fetchone()
            if present:
                return False
            conn.execute(
                "INSERT INTO excuses VALUES (?, ?, ?, ?) ON CONFLICT (session_id, member) "
                "DO UPDATE SET reason = excluded.reason",
                (session_id, member, reason, to_us(datetime.now(UTC))),
            )
            return True

        return await self._write(run)

    async def list_excuses(self, session_id: int) -> dict[str, str]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT member, reason FROM excuses WHERE session_id = ?", (session_id,)
            ).fetchall()
        )
        return dict(rows)

    # -- events -----------------------------------------------------------------------
    async def commit_events(
        self, items: Sequence[CheckinItem], decide: Decider, now: datetime
    ) -> tuple[list[Outcome], list[Event]]:
        def run(conn: sqlite3.Connection) -> tuple[list[Outcome], list[Event]]:
            facts = self._facts(conn, items)
            outcomes, rows, voids = decide(items, facts, now)
            if rows:
                conn.executemany(
                    "INSERT INTO events (id, session_id, site_id, type, ts, received_at, member, "
                    "count, target, voided, late_upload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    [
                        (
                            e.id,
                            e.session_id,
                            e.site_id,
                            e.type,
                            to_us(e.ts),
                            to_us(e.received_at),
                            e.member,
                            e.count,
                            e.target,
                            int(e.late_upload),
                        )
                        for e in rows
                    ],
                )
            if voids:
                conn.executemany("UPDATE events SET voided = 1 WHERE id = ?", [(v,) for v in voids])
            return outcomes, rows

        return await self._write(run)

    def _facts(self, conn: sqlite3.Connection, items: Sequence[CheckinItem]) -> Facts:
        ids = [it[2].id for it in items]
        stored = _existing(conn, "events", ids, column="id")
        session_ids = sorted({it[0] for it in items})
        sessions = {}
        for sid in session_ids:
            row = conn.execute(
                f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", (sid,)
            ).fetchone()
            if row is not None:
                sessions[sid] = _session(row)
        codes = sorted({it[2].member for it in items if it[2].member})
        members, unit_names = _members_and_unit_names(conn, codes)
        presence = {}
        for sid in session_ids:
            mine = sorted({it[2].member for it in items if it[0] == sid and it[2].member})
            rows: list[tuple[str, int, int]] = []
            for part in chunks(mine):
                rows += conn.execute(
                    f"SELECT member, site_id, ts FROM events WHERE session_id = ? AND member IN "
                    f"({','.join('?' * len(part))}) AND type = 'checkin' AND voided = 0",
                    (sid, *part),
                ).fetchall()
            names = self._names(conn, {r[1] for r in rows})
            found = first_presence([(m, s, from_us(t)) for m, s, t in rows], names)  # type: ignore[misc]
            presence.update({(sid, m): p for m, p in found.items()})
        target_ids = [it[2].target for it in items if it[2].target]
        targets = {}
        for part in chunks(target_ids):
            for row in conn.execute(
                "SELECT id, session_id, site_id, type, member, voided FROM events WHERE id IN "
                f"({','.join('?' * len(part))})",
                part,
            ):
                targets[row[0]] = TargetInfo(row[0], row[1], row[2], row[3], row[4], bool(row[5]))
        return Facts(sessions, members, stored, presence, targets, unit_names=unit_names)

    def _names(self, conn: sqlite3.Connection, site_ids: set[int]) -> dict[int, str]:
        missing = [s for s in site_ids if s not in self._site_names]
        for part in chunks(missing):
            for sid, name in conn.execute(
                f"SELECT id, name FROM sites WHERE id IN ({','.join('?' * len(part))})", part
            ):
                self._site_names[sid] = name
        return self._site_names

    async def _iterate(
        self, sql: str, args: tuple, convert: Callable[[tuple], T]
    ) -> AsyncIterator[T]:
        """Stream rows in chunks from a connection of its own, so exports do not block reads."""
        conn = await asyncio.to_thread(self._connect)
        try:
            cursor = await asyncio.to_thread(conn.execute, sql, args)
            while True:
                rows = await asyncio.to_thread(cursor.fetchmany, 5000)
                if not rows:
                    break
                for row in rows:
                    yield convert(row)
        finally:
            await asyncio.to_thread(conn.close)

    def iter_events(self, session_id: int, *, by_member: bool = False) -> AsyncIterator[Event]:
        order = "member, ts, id" if by_member else "received_at, id"
        return self._iterate(
            f"SELECT {_EVENT_COLS} FROM events WHERE session_id = ? ORDER BY {order}",
            (session_id,),
            _event,
        )

    async def iter_expected_members(self, session_id: int) -> AsyncIterator[Member]:
        row = await self._read(
            lambda c: c.execute(
                "SELECT frozen, audience FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        )
        if row is None:
            return
        if row[0]:
            sql = (
                "SELECT m.code, m.full_name, m.unit FROM session_members s "
                "JOIN members m ON m.code = s.member WHERE s.session_id = ? ORDER BY m.code"
            )
            args: tuple = (session_id,)
        else:
            sql = (
                f"{_SUBTREE} SELECT code, full_name, unit FROM members "
                "WHERE unit IN (SELECT code FROM sub) ORDER BY code"
            )
            args = (row[1],)
        async for member in self._iterate(sql, args, lambda r: Member(*r)):
            yield member

    # -- attendance ---------------------------------------------------------------------
    async def list_unexpected_members(self, session_id: int) -> dict[str, Member]:
        """Members with a counted (not voided) check-in at the session who are not expected."""

        def run(conn: sqlite3.Connection) -> dict[str, Member]:
            row = conn.execute(
                "SELECT frozen, audience FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                return {}
            checked_in = (
                "SELECT member FROM events WHERE session_id = ? AND type = 'checkin' "
                "AND voided = 0 AND member IS NOT NULL"
            )
            if row[0]:
                sql = (
                    f"SELECT code, full_name, unit FROM members WHERE code IN ({checked_in}) "
                    "AND code NOT IN (SELECT member FROM session_members WHERE session_id = ?)"
                )
                args: tuple = (session_id, session_id)
            else:
                sql = (
                    f"{_SUBTREE} SELECT code, full_name, unit FROM members "
                    f"WHERE code IN ({checked_in}) AND unit NOT IN (SELECT code FROM sub)"
                )
                args = (row[1], session_id)
            return {r[0]: Member(*r) for r in conn.execute(sql, args)}

        return await self._read(run)

    async def list_made_up(self, session_id: int) -> set[str]:
        """Members with a counted check-in at any make-up session of this one."""
        rows = await self._read(
            lambda c: c.execute(
                "SELECT DISTINCT e.member FROM sessions s JOIN events e ON e.session_id = s.id "
                "WHERE s.makeup_for = ? AND e.type = 'checkin' AND e.voided = 0 "
                "AND e.member IS NOT NULL",
                (session_id,),
            ).fetchall()
        )
        return {r[0] for r in rows}


def _existing(
    conn: sqlite3.Connection, table: str, codes: list[str], column: str = "code"
) -> set[str]:
    found: set[str] = set()
    for part in chunks(codes):
        found.update(
            r[0]
            for r in conn.execute(
                f"SELECT {column} FROM {table} WHERE {column} IN ({','.join('?' * len(part))})",
                part,
            )
        )
    return found


def _members_and_unit_names(
    conn: sqlite3.Connection, codes: list[str]
) -> tuple[dict[str, Member], dict[str, str]]:
    """The members by code, and the names of their units (for the ack's `member`)."""
    members: dict[str, Member] = {}
    unit_names: dict[str, str] = {}
    for part in chunks(codes):
        for code, full_name, unit, unit_name in conn.execute(
            "SELECT m.code, m.full_name, m.unit, u.name FROM members m "
            f"JOIN units u ON u.code = m.unit WHERE m.code IN ({','.join('?' * len(part))})",
            part,
        ):
            members[code] = Member(code, full_name, unit)
            unit_names[unit] = unit_name
    return members, unit_names


def _members(conn: sqlite3.Connection, codes: list[str]) -> dict[str, Member]:
    out: dict[str, Member] = {}
    for part in chunks(codes):
        for row in conn.execute(
            "SELECT code, full_name, unit FROM members WHERE code IN "
            f"({','.join('?' * len(part))})",
            part,
        ):
            out[row[0]] = Member(*row)
    return out
