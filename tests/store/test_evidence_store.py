"""Study evidence, session requirements and action plans, on both stores (the `store`
fixture gives each test a database of its own on SQLite and on PostgreSQL).

What the services rely on: evidence rows replace the stored ones whole and are counted as
created or updated, every write stores its audit entry in the same transaction, make-up
evidence is one row per member, and sessions written before migration 004 read as "nothing
required, no plans".
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

import streamsvc.storage.postgres as postgres_store
import streamsvc.storage.sqlite as sqlite_store
from streamsvc.domain.models import (
    ActionPlan,
    AuditEntry,
    Evidence,
    Member,
    PlanRule,
    Requirements,
    Session,
    Unit,
)
from streamsvc.errors import StoreUnavailable
from streamsvc.ports import Store
from streamsvc.services.sessions import NewSessionData
from streamsvc.storage import migration_scripts, open_store

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
NOW = START + timedelta(hours=3)
MIN = timedelta(minutes=1)

UNITS = [
    Unit("P", "Tỉnh ủy Bắc Kạn"),
    Unit("A", "Huyện ủy Ba Bể", "P"),
    Unit("A1", "Chi bộ Thôn Nà Phai", "A"),
    Unit("B", "Huyện ủy Na Rì", "P"),
]
MEMBERS = [
    Member("a-01", "Nguyễn Văn An", "A1"),
    Member("a-02", "Hoàng Thị Lan", "A1"),
    Member("b-01", "Triệu Thị Mai", "B"),
]
NOTHING = Requirements()
RULES = Requirements(reflection=True, quiz_pass=7.5, quiz_max=10.0)
PLANS = PlanRule(depth=1, heads=True, due=START + timedelta(days=30))


def entry(action: str, **fields: Any) -> AuditEntry:
    return AuditEntry(NOW, "ha", action, **fields)


async def actions(store: Store) -> list[str]:
    return [e.action async for e in store.iter_audit(None, None)][::-1]


async def session_of(
    store: Store,
    audience: tuple[str, ...] = ("P",),
    *,
    requires: Requirements = NOTHING,
    plans: PlanRule | None = None,
    makeup_for: int | None = None,
) -> Session:
    if not await store.list_units():
        await store.upsert_units(UNITS)
        await store.upsert_members(MEMBERS)
    new = NewSessionData("Nghị quyết", START, END, audience, 15, makeup_for, requires, plans)
    return await store.create_session(new, from_excused_of=None)


# -- sessions: requirements and the plan rule ---------------------------------------------


async def test_a_session_keeps_its_requirements_and_plan_rule(store):
    plain = await session_of(store)
    assert (plain.requires, plain.plans) == (Requirements(), None)
    strict = await session_of(store, requires=RULES, plans=PLANS)
    assert (strict.requires, strict.plans) == (RULES, PLANS)
    assert await store.get_session(strict.id) == strict
    assert [(s.requires, s.plans) for s in await store.list_sessions()] == [
        (Requirements(), None),
        (RULES, PLANS),
    ]
    # a rule without a due date, and a pass mark with the default range
    loose = await session_of(
        store, requires=Requirements(quiz_pass=50), plans=PlanRule(depth=2, heads=False)
    )
    got = await store.get_session(loose.id)
    assert got is not None
    assert (got.requires, got.plans) == (Requirements(False, 50.0, 100.0), PlanRule(2))


async def test_session_rules_change_later_even_after_the_close_with_their_entry(store):
    session = await session_of(store)
    changed = await store.update_session_rules(
        session.id, RULES, PLANS, audit=entry("session_changed", session_id=session.id)
    )
    assert changed == replace(session, requires=RULES, plans=PLANS)
    closed = await store.close_session(session.id, NOW)
    assert closed is not None
    cleared = await store.update_session_rules(
        session.id, Requirements(), None, audit=entry("session_changed", session_id=session.id)
    )
    assert cleared == replace(closed, requires=Requirements(), plans=None)
    assert await store.get_session(session.id) == cleared
    assert (
        await store.update_session_rules(404, RULES, None, audit=entry("session_changed")) is None
    )
    assert await actions(store) == ["session_changed", "session_changed"]


async def test_sessions_stored_before_migration_004_read_as_nothing_required(
    database_url, monkeypatch
):
    """A database at migration 003 with a session in it, then migrated: the old row reads
    as no requirement and no plans, and takes rules and evidence like a new one."""
    older = [m for m in migration_scripts("sqlite" if "sqlite" in database_url else "postgres")]
    older = [(v, text) for v, text in older if v < 4]
    for module in (sqlite_store, postgres_store):
        monkeypatch.setattr(module, "migration_scripts", lambda backend, older=older: older)
    store = open_store(database_url)
    await store.open()
    try:
        assert await store.migrate() == [1, 2, 3]
        await store.upsert_units(UNITS)
        insert = (
            "INSERT INTO sessions (title, starts_at, ends_at, audience, late_after_minutes, "
            "created_at) VALUES ('Cũ', 0, 1, '[\"P\"]', 15, 0)"
        )
        if database_url.startswith("sqlite"):
            conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
            with conn:
                conn.execute(insert)
            conn.close()
        else:
            pg = await asyncpg.connect(database_url)
            try:
                await pg.execute(
                    "INSERT INTO sessions (title, starts_at, ends_at, audience, "
                    "late_after_minutes) VALUES ('Cũ', now(), now(), '[\"P\"]', 15)"
                )
            finally:
                await pg.close()
        monkeypatch.undo()
        assert await store.migrate() == [4]
        (old,) = await store.list_sessions()
        assert (old.title, old.requires, old.plans) == ("Cũ", Requirements(), None)
        changed = await store.update_session_rules(old.id, RULES, PLANS)
        assert changed is not None and (changed.requires, changed.plans) == (RULES, PLANS)
    finally:
        await store.close()


# -- evidence -------------------------------------------------------------------------------


async def test_upsert_evidence_counts_created_and_updated_with_one_entry(store):
    session = await session_of(store, requires=RULES)
    at = NOW - MIN
    rows = [
        Evidence(session.id, "a-01", reflection=True, quiz_score=8.5, updated_at=at),
        Evidence(session.id, "a-02", quiz_score=None, self_study=True, updated_at=at),
    ]
    recorded = entry("evidence_recorded", session_id=session.id, detail="2 member(s)")
    assert await store.upsert_evidence(rows, audit=recorded) == (2, 0)
    assert await store.list_evidence(session.id) == {r.member: r for r in rows}

    # full rows replace the stored ones: a score cleared, a reflection added
    again = [
        Evidence(session.id, "a-01", reflection=True, quiz_score=None),
        Evidence(session.id, "a-02", reflection=True, self_study=True, quiz_score=6.0),
        Evidence(session.id, "b-01", quiz_score=10.0),
    ]
    assert await store.upsert_evidence(again, audit=recorded) == (1, 2)
    stored = await store.list_evidence(session.id)
    assert {k: replace(v, updated_at=None) for k, v in stored.items()} == {
        r.member: r for r in again
    }
    # no updated_at given: the time of the write
    assert all(e.updated_at is not None and e.updated_at > at for e in stored.values())
    assert await store.upsert_evidence([]) == (0, 0)
    log = [e async for e in store.iter_audit(None, None)]
    assert [(e.action, e.session_id, e.detail) for e in log] == [
        ("evidence_recorded", session.id, "2 member(s)")
    ] * 2


async def test_a_failed_evidence_upsert_stores_nothing_and_no_entry(store):
    session = await session_of(store)
    ok = Evidence(session.id, "a-01", reflection=True)
    with pytest.raises(Exception):  # noqa: B017 - each driver's own integrity error
        await store.upsert_evidence(
            [ok, Evidence(404, "a-02", reflection=True)], audit=entry("evidence_recorded")
        )
    assert await store.list_evidence(session.id) == {}
    assert await actions(store) == []


async def test_list_evidence_of_some_members_and_per_session(store):
    session = await session_of(store)
    other = await session_of(store)
    await store.upsert_evidence(
        [
            Evidence(session.id, "a-01", reflection=True, updated_at=NOW),
            Evidence(session.id, "b-01", quiz_score=3.0, updated_at=NOW),
            Evidence(other.id, "a-02", reflection=True, updated_at=NOW),
        ]
    )
    assert set(await store.list_evidence(session.id)) == {"a-01", "b-01"}
    assert await store.list_evidence(session.id, ["b-01", "a-02", "nobody"]) == {
        "b-01": Evidence(session.id, "b-01", quiz_score=3.0, updated_at=NOW)
    }
    assert await store.list_evidence(session.id, []) == {}
    assert set(await store.list_evidence(other.id)) == {"a-02"}
    assert await store.list_evidence(404) == {}


async def test_makeup_evidence_is_the_latest_per_member_across_makeup_sessions(store):
    first = await session_of(store, requires=RULES)
    makeup = await session_of(store, ("A",), makeup_for=first.id)
    second = await session_of(store, ("P",), makeup_for=first.id)
    unrelated = await session_of(store)
    await store.upsert_evidence(
        [
            Evidence(first.id, "a-01", reflection=False, updated_at=NOW),
            Evidence(makeup.id, "a-01", reflection=True, quiz_score=9.0, updated_at=NOW + MIN),
            Evidence(second.id, "a-01", quiz_score=4.0, updated_at=NOW),
            Evidence(makeup.id, "a-02", reflection=True, updated_at=NOW),
            Evidence(second.id, "b-01", quiz_score=8.0, updated_at=NOW + 2 * MIN),
            Evidence(unrelated.id, "b-01", reflection=True, updated_at=NOW + 3 * MIN),
        ]
    )
    assert await store.list_makeup_evidence(first.id) == {
        "a-01": Evidence(makeup.id, "a-01", reflection=True, quiz_score=9.0, updated_at=NOW + MIN),
        "a-02": Evidence(makeup.id, "a-02", reflection=True, updated_at=NOW),
        "b-01": Evidence(second.id, "b-01", quiz_score=8.0, updated_at=NOW + 2 * MIN),
    }
    assert await store.list_makeup_evidence(makeup.id) == {}
    assert await store.list_makeup_evidence(404) == {}


# -- who is expected, among many ----------------------------------------------------------


async def test_expected_among_answers_for_a_few_and_for_thousands(store):
    session = await session_of(store, ("A",))
    assert await store.expected_among(session.id, ["a-01", "b-01", "nobody"]) == {"a-01"}
    assert await store.expected_among(session.id, []) == set()
    assert await store.expected_among(404, ["a-01"]) == set()

    # 2,500 members, more than any one IN list may hold in SQLite's old limit of 999
    many = [Member(f"m-{i:05d}", f"Đảng viên {i}", "A1" if i % 2 else "B") for i in range(2500)]
    await store.upsert_members(many)
    codes = [m.code for m in many] + ["a-02", "nobody", "a-02"]
    wanted = {m.code for m in many if m.unit == "A1"} | {"a-02"}
    assert await store.expected_among(session.id, codes) == wanted

    # once closed the frozen list answers, whatever the roster says later
    await store.close_session(session.id, NOW)
    await store.upsert_members([Member("m-00001", "Chuyển đi", "B")])
    assert await store.expected_among(session.id, codes) == wanted


# -- action plans ---------------------------------------------------------------------------


async def test_plans_are_saved_replaced_listed_and_deleted_with_their_entries(store):
    session = await session_of(store, plans=PLANS)
    other = await session_of(store, plans=PLANS)
    committee = ActionPlan(session.id, "B", "committee", NOW, "ha", "Kế hoạch số 12-KH/HU")
    head = ActionPlan(session.id, "A", "head", NOW - MIN, "binh")
    recorded = entry("plan_recorded", session_id=session.id)
    assert await store.save_plan(committee, audit=recorded) is True
    assert await store.save_plan(head, audit=recorded) is True
    assert await store.save_plan(ActionPlan(other.id, "A", "committee", NOW, "ha")) is True
    assert await store.list_plans(session.id) == [head, committee]

    corrected = replace(committee, handed_in_at=NOW + MIN, recorded_by="binh", note=None)
    assert await store.save_plan(corrected, audit=recorded) is False
    assert await store.list_plans(session.id) == [head, corrected]

    withdrawn = entry("plan_withdrawn", session_id=session.id)
    assert await store.delete_plan(session.id, "A", "head", audit=withdrawn) is True
    assert await store.delete_plan(session.id, "A", "head", audit=withdrawn) is False
    assert await store.delete_plan(session.id, "B", "head", audit=withdrawn) is False
    assert await store.list_plans(session.id) == [corrected]
    assert len(await store.list_plans(other.id)) == 1
    assert await store.list_plans(404) == []
    assert await actions(store) == [
        "plan_recorded",
        "plan_recorded",
        "plan_recorded",
        "plan_withdrawn",
    ]


# -- PostgreSQL lost ------------------------------------------------------------------------

#: The methods new with study evidence (test_store_unavailable.py holds the older ones).
LOST: dict[str, Callable[[Store, int], Awaitable[Any]]] = {
    "update_session_rules": lambda store, sid: store.update_session_rules(sid, RULES, PLANS),
    "upsert_evidence": lambda store, sid: store.upsert_evidence([Evidence(sid, "a-01")]),
    "list_evidence": lambda store, sid: store.list_evidence(sid, ["a-01"]),
    "list_makeup_evidence": lambda store, sid: store.list_makeup_evidence(sid),
    "expected_among": lambda store, sid: store.expected_among(sid, ["a-01"]),
    "save_plan": lambda store, sid: store.save_plan(ActionPlan(sid, "A", "head", NOW, "ha")),
    "delete_plan": lambda store, sid: store.delete_plan(sid, "A", "head"),
    "list_plans": lambda store, sid: store.list_plans(sid),
}


@pytest.mark.postgres
@pytest.mark.parametrize("method", list(LOST))
async def test_a_lost_database_is_store_unavailable_from_every_evidence_method(method: str) -> None:
    require_postgres()
    url = await create_pg_database()
    store = open_store(url)
    try:
        await store.open()
        await store.migrate()
        session = await session_of(store)
        await drop_pg_database(url)  # WITH (FORCE): the pool's connections are cut too
        with pytest.raises(StoreUnavailable):
            await LOST[method](store, session.id)
    finally:
        await store.close()
        await drop_pg_database(url)
