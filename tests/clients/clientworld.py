"""A real server with the test roster, one open session and a site, for the client tests."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from builders import add_site, open_session, seed_roster
from serverproc import ServerProcess


class Api:
    """Just enough of the aiohttp test client for `builders`, against a real server."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def post(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.post(self.base + path, **kw)

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.get(self.base + path, **kw)


@dataclass(frozen=True)
class World:
    session_id: int
    token: str
    site_id: int


def headers(server: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}"}


async def make_world(server: ServerProcess) -> World:
    async with aiohttp.ClientSession() as http:
        api = Api(http, server.url)
        await seed_roster(api, headers(server))
        session = await open_session(api, headers(server))
        site = await add_site(api, headers(server), session["id"])
    return World(session["id"], site["token"], site["id"])


async def attendance(server: ServerProcess, session_id: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        api = Api(http, server.url)
        r = await api.get(f"/api/v1/sessions/{session_id}/attendance", headers=headers(server))
        assert r.status == 200, await r.text()
        return await r.json()


def outbox_rows(path: Path) -> list[tuple[str, str | None]]:
    """(event id, result) of every event in an outbox file, read beside a running client."""
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=5) as db:
        try:
            return db.execute("SELECT id, result FROM events ORDER BY seq").fetchall()
        except sqlite3.OperationalError:  # the client has not made the table yet
            return []
