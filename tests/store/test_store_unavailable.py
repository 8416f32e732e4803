"""A PostgreSQL database lost while the store is open: every method says StoreUnavailable.

The web layer answers 503 for it, and the check-in socket closes with 1013 so devices
resend; neither knows which driver the store uses.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import create_pg_database, drop_pg_database, require_postgres

from streamsvc.domain.checkin import Incoming, decide_batch
from streamsvc.domain.models import Member, NewSite, Requirements, Unit
from streamsvc.errors import StoreUnavailable
from streamsvc.storage import open_store

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC)


class Planned:
    title = "Hội nghị"
    starts_at = NOW - timedelta(minutes=5)
    ends_at = NOW + timedelta(hours=2)
    audience = ("P",)
    late_after_minutes = 15
    makeup_for = None
    requires = Requirements()
    plans = None


async def drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [row async for row in stream]


CALLS: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
    "ping": lambda store, site: store.ping(),
    "get_setting": lambda store, site: store.get_setting("k"),
    "set_setting": lambda store, site: store.set_setting("k", "v"),
    "list_units": lambda store, site: store.list_units(),
    "upsert_members": lambda store, site: store.upsert_members([Member("M2", "B", "P")]),
    "search_members": lambda store, site: store.search_members("P", "b", 10, 0),
    "create_session": lambda store, site: store.create_session(Planned(), from_excused_of=None),
    "get_session": lambda store, site: store.get_session(site.session_id),
    "list_sessions": lambda store, site: store.list_sessions(),
    "close_session": lambda store, site: store.close_session(site.session_id, NOW),
    "is_expected": lambda store, site: store.is_expected(site.session_id, "M1"),
    "list_sites": lambda store, site: store.list_sites(site.session_id),
    "add_excuse": lambda store, site: store.add_excuse(site.session_id, "M1", "ốm"),
    "commit_events": lambda store, site: store.commit_events(
        [(site.session_id, site, Incoming(str(uuid.uuid4()), "checkin", NOW, "M1"))],
        decide_batch,
        NOW,
    ),
    "iter_events": lambda store, site: drain(store.iter_events(site.session_id)),
    "iter_expected_members": lambda store, site: drain(
        store.iter_expected_members(site.session_id)
    ),
    "list_unexpected_members": lambda store, site: store.list_unexpected_members(site.session_id),
    "list_made_up": lambda store, site: store.list_made_up(site.session_id),
}


@pytest.mark.parametrize("method", list(CALLS))
async def test_every_method_of_a_store_whose_database_is_gone_raises_store_unavailable(
    method: str,
) -> None:
    require_postgres()
    url = await create_pg_database()
    store = open_store(url)
    try:
        await store.open()
        await store.migrate()
        await store.upsert_units([Unit("P", "Tỉnh ủy", None)])
        await store.upsert_members([Member("M1", "Nguyễn Văn An", "P")])
        session = await store.create_session(Planned(), from_excused_of=None)
        site = await store.create_site(
            NewSite(session.id, "Hall", "hall", None, None, uuid.uuid4().hex)
        )
        await drop_pg_database(url)  # WITH (FORCE): the pool's connections are cut too
        with pytest.raises(StoreUnavailable) as caught:
            await CALLS[method](store, site)
        assert caught.value.status == 503
    finally:
        await store.close()
        await drop_pg_database(url)
