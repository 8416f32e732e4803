"""Accounts, sign-in tokens and the audit log, on both stores (the `store` fixture gives
each test a database of its own on SQLite and on PostgreSQL).

What the services rely on: a change and its audit entry are stored together or not at all,
the log is append-only in the database itself, and voided check-ins read as entries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from conftest import create_pg_database, drop_pg_database, require_postgres

from streamsvc.domain.checkin import Incoming, decide_batch
from streamsvc.domain.models import AuditEntry, Member, NewSite, Session, Site, Unit, User
from streamsvc.errors import StoreUnavailable
from streamsvc.ports import Store
from streamsvc.services.sessions import NewSessionData
from streamsvc.storage import open_store

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
NOW = START + timedelta(minutes=20)
MIN = timedelta(minutes=1)

UNITS = [Unit("P", "Tỉnh ủy Bắc Kạn"), Unit("A", "Huyện ủy Ba Bể", "P"), Unit("B", "Na Rì", "P")]
MEMBERS = [Member("a-01", "Nguyễn Văn An", "A"), Member("b-01", "Triệu Thị Mai", "B")]

HA = User("ha", "Nông Thị Hà", "A", "organizer", True, "$argon2id$v=19$ha")
BINH = User("binh", "Lý Văn Bình", "P", "admin", True, "$argon2id$v=19$binh")


def entry(action: str, at: datetime = NOW, actor: str = "binh", **fields: Any) -> AuditEntry:
    return AuditEntry(at, actor, action, **fields)


async def audit_of(
    store: Store, start: datetime | None = None, end: datetime | None = None, **filters: Any
) -> list[AuditEntry]:
    return [e async for e in store.iter_audit(start, end, **filters)]


async def actions(store: Store) -> list[str]:
    return [e.action for e in reversed(await audit_of(store))]


async def open_session(store: Store) -> tuple[Session, Site]:
    await store.upsert_units(UNITS)
    await store.upsert_members(MEMBERS)
    session = await store.create_session(
        NewSessionData("Nghị quyết", START, END, ("P",), 15, None), from_excused_of=None
    )
    site = await store.create_site(NewSite(session.id, "Hội trường", "hall", "A", None, "h1"))
    return session, site


# -- users and tokens -------------------------------------------------------------------


async def test_users_are_created_once_listed_by_login_and_replaced(store):
    assert await store.get_user("ha") is None
    assert await store.create_user(HA, audit=entry("user_created", target="ha")) is True
    assert await store.create_user(BINH) is True
    taken = replace(HA, full_name="Someone else", password_hash="other")
    assert await store.create_user(taken, audit=entry("user_created", target="ha")) is False
    assert await store.get_user("ha") == HA
    assert (await store.get_user("ha")).password_hash == HA.password_hash
    assert await store.list_users() == [BINH, HA]
    changed = replace(HA, unit="B", role="viewer", active=False, password_hash="new")
    assert await store.save_user(changed, audit=entry("user_changed", target="ha")) == []
    assert await store.get_user("ha") == changed
    assert (await store.get_user("ha")).active is False
    # an unknown login changes nothing and records nothing
    assert await store.save_user(replace(HA, login="nobody"), audit=entry("user_changed")) == []
    assert await store.get_user("nobody") is None
    assert await actions(store) == ["user_created", "user_changed"]


async def test_tokens_are_looked_up_with_their_user_and_revoked_once(store):
    await store.create_user(HA)
    expires = NOW + timedelta(hours=12)
    await store.add_auth_token("t1", "ha", NOW, expires, audit=entry("login", actor="ha"))
    assert await store.auth_token("t1") == (HA, expires, None)
    assert await store.auth_token("t404") is None
    later = NOW + MIN
    assert await store.revoke_auth_token("t1", later, audit=entry("logout", actor="ha")) is True
    assert await store.revoke_auth_token("t1", later + MIN, audit=entry("logout")) is False
    assert await store.revoke_auth_token("t404", later, audit=entry("logout")) is False
    assert await store.auth_token("t1") == (HA, expires, later)
    assert await actions(store) == ["login", "logout"]


async def test_save_user_revokes_the_tokens_still_valid_and_names_them(store):
    await store.create_user(HA)
    await store.create_user(BINH)
    for token in ("t1", "t2", "t3"):
        await store.add_auth_token(token, "ha", NOW, NOW + timedelta(hours=12))
    await store.add_auth_token("other", "binh", NOW, NOW + timedelta(hours=12))
    await store.revoke_auth_token("t2", NOW)
    at = NOW + MIN
    revoked = await store.save_user(replace(HA, active=False), revoke_tokens_at=at)
    assert sorted(revoked) == ["t1", "t3"]
    assert [(await store.auth_token(t))[2] for t in ("t1", "t2", "t3", "other")] == [
        at,
        NOW,
        at,
        None,
    ]
    assert await store.save_user(replace(HA, active=False), revoke_tokens_at=at) == []


# -- each change with its entry ---------------------------------------------------------


async def test_each_change_stores_its_entry_and_a_refused_one_none(store):
    assert await store.get_setting("units_version") is None
    await store.upsert_units(UNITS, audit=entry("roster_imported", detail="units 3"))
    assert await store.get_setting("units_version") == "1"
    await store.upsert_units(UNITS[:1])
    assert await store.get_setting("units_version") == "2"
    await store.upsert_members(MEMBERS, audit=entry("roster_imported", detail="members 2"))
    session = await store.create_session(
        NewSessionData("Nghị quyết", START, END, ("P",), 15, None),
        from_excused_of=None,
        audit=entry("session_created"),
    )
    site = await store.create_site(
        NewSite(session.id, "Hội trường", "hall", "A", None, "h1"),
        audit=entry("site_created", session_id=session.id, unit="A"),
    )
    many = await store.create_sites(
        [NewSite(session.id, f"Điểm {i}", "bridge", "B", 50, f"b{i}") for i in range(3)],
        audit=[
            entry("site_created", session_id=session.id, unit="B", detail=str(i)) for i in range(3)
        ],
    )
    assert await store.add_excuse(session.id, "b-01", "ốm", audit=entry("excuse_recorded")) is True
    assert await store.delete_excuse(session.id, "b-01", audit=entry("excuse_withdrawn")) is True
    assert await store.delete_excuse(session.id, "b-01", audit=entry("excuse_withdrawn")) is False
    assert await store.reset_site_token(404, "x", audit=entry("site_token_reset")) is None
    assert await store.close_session(404, NOW, audit=entry("session_closed")) is None
    await store.close_session(session.id, NOW, audit=entry("session_closed", session_id=session.id))

    log = list(reversed(await audit_of(store)))
    assert [e.action for e in log] == [
        "roster_imported",
        "roster_imported",
        "session_created",
        "site_created",
        "site_created",
        "site_created",
        "site_created",
        "excuse_recorded",
        "excuse_withdrawn",
        "session_closed",
    ]
    assert log[2].session_id == session.id  # filled in by the store
    assert [e.target for e in log[3:7]] == [str(s.id) for s in (site, *many)]
    assert [e.detail for e in log[4:7]] == ["0", "1", "2"]
    assert log[3] == entry("site_created", session_id=session.id, unit="A", target=str(site.id))


async def test_a_failed_change_stores_no_entry(store):
    session, site = await open_session(store)
    with pytest.raises(Exception):  # noqa: B017 - each driver's own integrity error
        await store.add_auth_token("t1", "nobody", NOW, NOW + MIN, audit=entry("login"))
    with pytest.raises(Exception):  # noqa: B017
        await store.create_sites(
            [NewSite(session.id, "X", "hall", None, None, "fresh"), replace_hash(site, "h1")],
            audit=[entry("site_created"), entry("site_created")],
        )
    with pytest.raises(ValueError, match="2 audit entries for 1 sites"):
        await store.create_sites(
            [NewSite(session.id, "Y", "hall", None, None, "y")],
            audit=[entry("site_created"), entry("site_created")],
        )
    assert [s.id for s in await store.list_sites(session.id)] == [site.id]
    assert await store.add_excuse(session.id, "a-01", "bận") is True
    await commit(store, session, site, Incoming("e1", "checkin", START, "b-01"))
    assert await store.add_excuse(session.id, "b-01", "ốm", audit=entry("excuse_recorded")) is False
    assert await audit_of(store) == []


def replace_hash(site: Site, token_hash: str) -> NewSite:
    """A new site whose token hash is already taken by `site`."""
    return NewSite(site.session_id, "Z", "hall", None, None, token_hash)


async def test_a_reset_token_finds_the_site_by_the_new_hash_only(store):
    _, site = await open_session(store)
    assert await store.get_site(site.id) == site
    assert await store.get_site(404) is None
    old = await store.reset_site_token(site.id, "h2", audit=entry("site_token_reset"))
    assert old == "h1"
    assert await store.site_by_token_hash("h1") is None
    assert await store.site_by_token_hash("h2") == site
    assert [e.action for e in await audit_of(store)] == ["site_token_reset"]


# -- reading the log --------------------------------------------------------------------


async def commit(store: Store, session: Session, site: Site, *events: Incoming) -> None:
    await store.commit_events([(session.id, site, e) for e in events], decide_batch, NOW)


async def test_the_log_reads_newest_first_filtered_with_voided_checkins(store):
    session, site = await open_session(store)
    other = await store.create_session(
        NewSessionData("Khác", START, END, ("P",), 15, None), from_excused_of=None
    )
    await store.append_audit(
        [
            entry("login", NOW - 2 * MIN, actor="ha"),
            entry("excuse_recorded", NOW - MIN, actor="ha", session_id=session.id),
            entry("session_closed", NOW + MIN, session_id=other.id),
            entry("login", NOW + MIN, actor="binh"),  # the same time: the later id first
        ]
    )
    await store.append_audit([])
    await commit(
        store,
        session,
        site,
        Incoming("e1", "checkin", START, "a-01"),
        Incoming("v1", "void", target="e1"),
    )

    log = await audit_of(store)
    assert [(e.action, e.actor) for e in log] == [
        ("login", "binh"),
        ("session_closed", "binh"),
        ("checkin_voided", f"site:{site.id}"),
        ("excuse_recorded", "ha"),
        ("login", "ha"),
    ]
    assert log[2] == AuditEntry(
        NOW, f"site:{site.id}", "checkin_voided", session.id, "a-01", "event e1", None, "A"
    )

    def acts(entries: list[AuditEntry]) -> list[str]:
        return [e.action for e in entries]

    assert acts(await audit_of(store, start=NOW - MIN, end=NOW + MIN)) == [
        "checkin_voided",
        "excuse_recorded",
    ]
    assert acts(await audit_of(store, start=NOW + MIN)) == ["login", "session_closed"]
    assert acts(await audit_of(store, session_id=session.id)) == [
        "checkin_voided",
        "excuse_recorded",
    ]
    assert acts(await audit_of(store, actor="ha")) == ["excuse_recorded", "login"]
    assert acts(await audit_of(store, actor=f"site:{site.id}")) == ["checkin_voided"]
    assert acts(await audit_of(store, actor="site:404")) == []
    assert acts(await audit_of(store, action="checkin_voided")) == ["checkin_voided"]
    assert acts(await audit_of(store, action="login", actor="ha")) == ["login"]
    assert acts(await audit_of(store, action="checkin_voided", session_id=other.id)) == []


async def test_recent_failures_by_login_and_by_address(store):
    failures = [
        entry("login_failed", NOW - 20 * MIN, actor="ha", target="ha", address="10.0.0.1"),
        entry("login_failed", NOW - 5 * MIN, actor="ha", target="ha", address="10.0.0.1"),
        entry("login_failed", NOW - 4 * MIN, actor="x", target="x", address="10.0.0.1"),
        entry("login_failed", NOW - 3 * MIN, actor="ha", target="ha", address="10.0.0.2"),
        entry("login", NOW - 2 * MIN, actor="ha", target="ha", address="10.0.0.1"),
    ]
    await store.append_audit(failures)
    since = NOW - 15 * MIN
    assert await store.recent_failures("ha", "10.0.0.1", since) == (
        [NOW - 5 * MIN, NOW - 3 * MIN],
        [NOW - 5 * MIN, NOW - 4 * MIN],
    )
    assert await store.recent_failures("ha", None, since) == ([NOW - 5 * MIN, NOW - 3 * MIN], [])
    assert await store.recent_failures("nobody", "10.9.9.9", since) == ([], [])


async def test_the_database_refuses_to_change_or_delete_an_entry(store, database_url):
    await store.append_audit([entry("login")])
    statements = ["UPDATE audit SET actor = 'someone'", "DELETE FROM audit"]
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path)
        try:
            for statement in statements:
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    conn.execute(statement)
        finally:
            conn.close()
    else:
        pg = await asyncpg.connect(database_url)
        try:
            for statement in [*statements, "TRUNCATE audit"]:
                with pytest.raises(asyncpg.PostgresError, match="append-only"):
                    await pg.execute(statement)
        finally:
            await pg.close()
    assert await audit_of(store) == [entry("login")]


# -- PostgreSQL lost ------------------------------------------------------------------------

#: The methods new with accounts (test_store_unavailable.py holds the older ones).
LOST: dict[str, Callable[[Store, Site], Awaitable[Any]]] = {
    "upsert_units": lambda store, site: store.upsert_units(UNITS, audit=entry("roster_imported")),
    "reset_site_token": lambda store, site: store.reset_site_token(site.id, "h9"),
    "get_site": lambda store, site: store.get_site(site.id),
    "delete_excuse": lambda store, site: store.delete_excuse(site.session_id, "a-01"),
    "create_user": lambda store, site: store.create_user(HA),
    "get_user": lambda store, site: store.get_user("ha"),
    "list_users": lambda store, site: store.list_users(),
    "save_user": lambda store, site: store.save_user(HA, revoke_tokens_at=NOW),
    "add_auth_token": lambda store, site: store.add_auth_token("t", "ha", NOW, NOW),
    "auth_token": lambda store, site: store.auth_token("t"),
    "revoke_auth_token": lambda store, site: store.revoke_auth_token("t", NOW),
    "append_audit": lambda store, site: store.append_audit([entry("login")]),
    "iter_audit": lambda store, site: audit_of(store),
    "recent_failures": lambda store, site: store.recent_failures("ha", "10.0.0.1", NOW),
}


@pytest.mark.postgres
@pytest.mark.parametrize("method", list(LOST))
async def test_a_lost_database_is_store_unavailable_from_every_new_method(method: str) -> None:
    require_postgres()
    url = await create_pg_database()
    store = open_store(url)
    try:
        await store.open()
        await store.migrate()
        _, site = await open_session(store)
        await drop_pg_database(url)  # WITH (FORCE): the pool's connections are cut too
        with pytest.raises(StoreUnavailable):
            await LOST[method](store, site)
    finally:
        await store.close()
        await drop_pg_database(url)
