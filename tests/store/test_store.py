"""One suite for both stores: what the services rely on, straight at the store."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from streamsvc.domain.checkin import Incoming, decide_batch
from streamsvc.domain.models import Member, NewSite, PlanRule, Requirements, Unit
from streamsvc.storage import open_store

UNITS = [Unit("P", "Tỉnh ủy", None), Unit("A", "Chi bộ A", "P"), Unit("B", "Chi bộ B", "P")]
MEMBERS = [
    Member("20000002", "Đồng Văn Khải", "A"),
    Member("20000001", "Nguyễn Thị Hà", "A"),
    Member("20000003", "Lường Văn Sáng", "B"),
]


@dataclass
class NewSession:
    title: str
    starts_at: datetime
    ends_at: datetime
    audience: tuple[str, ...]
    late_after_minutes: int = 15
    makeup_for: int | None = None
    requires: Requirements = field(default_factory=Requirements)
    plans: PlanRule | None = None


def new_session(audience=("P",)) -> NewSession:
    now = datetime.now(UTC)
    return NewSession("Hội nghị", now - timedelta(minutes=5), now + timedelta(hours=2), audience)


async def roster(store) -> None:
    assert await store.upsert_units(UNITS) == (3, 0)
    assert await store.upsert_members(MEMBERS) == (3, 0)


async def test_migrate_is_idempotent(store):
    assert await store.migrate() == []


async def test_upserts_count_created_and_updated(store):
    await roster(store)
    changed = [Member("20000001", "Nguyễn Thị Hạ", "B"), Member("20000009", "Mới", "A")]
    assert await store.upsert_members(changed) == (1, 1)
    found = await store.get_members(["20000001", "20000009", "nobody"])
    assert found["20000001"] == Member("20000001", "Nguyễn Thị Hạ", "B")
    assert set(found) == {"20000001", "20000009"}


async def test_search_is_accent_insensitive_and_sorted_by_code(store):
    await roster(store)
    members, total = await store.search_members(None, "dong", 10, 0)
    assert ([m.code for m in members], total) == (["20000002"], 1)
    members, total = await store.search_members("A", None, 10, 0)
    assert [m.code for m in members] == ["20000001", "20000002"]
    members, total = await store.search_members("P", "van", 1, 1)
    assert ([m.code for m in members], total) == (["20000003"], 2)


async def test_expected_members_stream_in_code_order(store):
    await roster(store)
    session = await store.create_session(new_session(), from_excused_of=None)
    assert session.expected == 3
    codes = [m.code async for m in store.iter_expected_members(session.id)]
    assert codes == ["20000001", "20000002", "20000003"]


async def test_commit_events_stores_each_id_once(store):
    await roster(store)
    session = await store.create_session(new_session(), from_excused_of=None)
    site = await store.create_site(
        NewSite(session.id, "Hall", "hall", None, None, uuid.uuid4().hex)
    )
    now = datetime.now(UTC)
    event = Incoming(str(uuid.uuid4()), "checkin", now, "20000001")
    items = [(session.id, site, event), (session.id, site, event)]
    outcomes, stored = await store.commit_events(items, decide_batch, now)
    assert [o.result for o in outcomes] == ["accepted", "duplicate"]
    assert [e.id for e in stored] == [event.id]
    outcomes, stored = await store.commit_events(items[:1], decide_batch, now)
    assert ([o.result for o in outcomes], stored) == (["duplicate"], [])
    events = [e async for e in store.iter_events(session.id)]
    assert [(e.id, e.member, e.site_id) for e in events] == [(event.id, "20000001", site.id)]
    assert events[0].received_at >= events[0].ts - timedelta(seconds=1)


async def test_two_stores_racing_on_one_database_store_an_event_once(database_url):
    """Two instances (two store objects) sending the same event ids at the same time."""
    if database_url.startswith("sqlite"):
        pytest.skip("several instances share PostgreSQL")
    a, b = open_store(database_url), open_store(database_url)
    await a.open()
    await b.open()
    try:
        await a.migrate()
        await roster(a)
        session = await a.create_session(new_session(), from_excused_of=None)
        site = await a.create_site(
            NewSite(session.id, "Hall", "hall", None, None, uuid.uuid4().hex)
        )
        now = datetime.now(UTC)
        events = [
            Incoming(str(uuid.uuid4()), "checkin", now, code)
            for code in ("20000001", "20000002", "20000003")
        ] * 20
        items = [(session.id, site, e) for e in events]
        results = await asyncio.gather(
            *(s.commit_events(items[i::4], decide_batch, now) for i in range(4) for s in (a, b))
        )
        accepted = [o.id for outcomes, _ in results for o in outcomes if o.result == "accepted"]
        assert sorted(accepted) == sorted({e.id for e in events})
        stored = [e.id async for e in a.iter_events(session.id)]
        assert sorted(stored) == sorted({e.id for e in events})
    finally:
        await a.close()
        await b.close()
