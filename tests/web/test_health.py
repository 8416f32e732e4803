"""`/healthz`: ok on each store; 503 naming the database when it goes away."""

from __future__ import annotations

import pytest
from conftest import ADMIN, create_pg_database, drop_pg_database, require_postgres

from streamsvc.config import Settings
from streamsvc.web.app import create_app


async def test_healthz_ok(client):
    r = await client.get("/healthz")
    assert (r.status, await r.json()) == (
        200,
        {"status": "ok", "database": "ok", "redis": "disabled"},
    )


@pytest.mark.postgres
async def test_healthz_is_503_when_the_database_is_gone(aiohttp_client):
    require_postgres()
    url = await create_pg_database()
    try:
        client = await aiohttp_client(create_app(Settings(database=url, admin_token=ADMIN)))
        assert (await client.get("/healthz")).status == 200
        await drop_pg_database(url)
        r = await client.get("/healthz")
        body = await r.json()
        assert r.status == 503
        assert body["status"] != "ok" and body["database"].startswith("failing")
        r = await client.get("/api/v1/units", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status == 503
        assert (await r.json())["error"]["code"] == "unavailable"
    finally:
        await drop_pg_database(url)
