"""Shared fixtures: real stores (SQLite file, PostgreSQL database of its own), real Redis.

Outside CI a test whose server is not running is skipped with a reason that says how to
start it; under `CI=true` it fails instead, so a red run cannot hide behind skips.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from streamsvc.config import Settings
from streamsvc.storage import open_store

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_ADMIN_URL = os.environ.get("STREAMSVC_TEST_PG", f"postgresql://postgres@{PG_HOST}:{PG_PORT}")
REDIS_URL = os.environ.get("STREAMSVC_TEST_REDIS", f"redis://{REDIS_HOST}:{REDIS_PORT}/0")

START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
ADMIN = "admin-test-token"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int, start: str) -> None:
    """Skip (outside CI) or fail (CI=true) when a server the test needs is not running."""
    if _reachable(host, port):
        return
    message = f"{name} is not running on {host}:{port}; start it with: {start}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def require_postgres() -> None:
    require_server("PostgreSQL", PG_HOST, PG_PORT, START_PG)


def require_redis() -> None:
    require_server("Redis", REDIS_HOST, REDIS_PORT, START_REDIS)


async def create_pg_database() -> str:
    """A fresh, empty database of the test's own; returns its URL."""
    import asyncpg

    name = f"streamsvc_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(f"{PG_ADMIN_URL}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{PG_ADMIN_URL}/{name}"


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(f"{PG_ADMIN_URL}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """The URL of an empty database on each store the service supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'streamsvc.db'}"
        return
    require_postgres()
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def store(database_url: str):
    """An open, migrated store on each backend."""
    s = open_store(database_url)
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database=database_url, admin_token=ADMIN)


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    """A test client of the whole app on each store."""
    from streamsvc.web.app import create_app

    return await aiohttp_client(create_app(settings))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of the test's own; its keys are deleted afterwards."""
    require_redis()
    prefix = f"streamsvc-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    import redis

    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(r.scan_iter(f"{prefix}*"))
        if keys:
            r.delete(*keys)
    finally:
        r.close()


async def _serving(database_url: str, tmp_path) -> AsyncIterator[object]:
    from serverproc import ServerProcess  # imports this module: loaded late

    proc = ServerProcess(database_url, tmp_path / "server.log")
    await proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def server(database_url: str, tmp_path) -> AsyncIterator[object]:
    """A real `streamsvc serve` process on the test's store; stopped afterwards."""
    async for proc in _serving(database_url, tmp_path):
        yield proc


@pytest.fixture
async def sqlite_server(tmp_path) -> AsyncIterator[object]:
    """A real `streamsvc serve` on a SQLite file of its own, for what no store changes (pages,
    clients); stopped afterwards."""
    async for proc in _serving(f"sqlite:///{tmp_path / 'streamsvc.db'}", tmp_path):
        yield proc


@pytest.fixture(scope="module", params=["dict", "compact"])
def expected_form(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests twice (`pytestmark = pytest.mark.usefixtures("expected_form")`):
    the expected members in a dict (a province) and in the compact sorted form the national
    day's 2,000,000 members take (`streamsvc.domain.expected`)."""
    from streamsvc.domain import expected

    saved = expected.COMPACT_FROM
    expected.COMPACT_FROM = 0 if request.param == "compact" else saved
    try:
        yield request.param
    finally:
        expected.COMPACT_FROM = saved
