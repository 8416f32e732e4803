"""Small builders shared by the HTTP and websocket tests: a roster and an open session."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

UNITS = [
    {"code": "TU", "name": "Tỉnh ủy Bắc Kạn", "parent": None},
    {"code": "DB1", "name": "Đảng bộ huyện Ba Bể", "parent": "TU"},
    {"code": "CB1", "name": "Chi bộ Đồng Phúc", "parent": "DB1"},
    {"code": "CB2", "name": "Chi bộ Nam Mẫu", "parent": "DB1"},
    {"code": "DB2", "name": "Đảng bộ huyện Na Rì", "parent": "TU"},
    {"code": "CB3", "name": "Chi bộ Côn Minh", "parent": "DB2"},
]
MEMBERS = [
    {"code": "10000001", "full_name": "Nguyễn Văn An", "unit": "CB1"},
    {"code": "10000002", "full_name": "Hoàng Thị Đào", "unit": "CB1"},
    {"code": "10000003", "full_name": "Nông Văn Đồng", "unit": "CB2"},
    {"code": "10000004", "full_name": "Triệu Thị Mai", "unit": "CB2"},
    {"code": "10000005", "full_name": "Lý Văn Bình", "unit": "CB3"},
    {"code": "10000006", "full_name": "Ma Thị Hương", "unit": "CB3"},
]


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def checkin(member: str, ts: datetime | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "checkin",
        "id": str(uuid.uuid4()),
        "member": member,
        "ts": iso(ts or now()),
        **extra,
    }


async def seed_roster(client, headers) -> None:
    r = await client.post("/api/v1/units", json={"units": UNITS}, headers=headers)
    assert r.status == 200, await r.text()
    r = await client.post("/api/v1/members", json={"members": MEMBERS}, headers=headers)
    assert r.status == 200, await r.text()


async def open_session(client, headers, audience=("TU",), **fields: Any) -> dict[str, Any]:
    """A session that started ten minutes ago and runs for two hours."""
    body = {
        "title": "Học tập Nghị quyết Đại hội XIV",
        "starts_at": iso(now() - timedelta(minutes=10)),
        "ends_at": iso(now() + timedelta(hours=2)),
        "audience": list(audience),
        "late_after_minutes": 15,
        **fields,
    }
    r = await client.post("/api/v1/sessions", json=body, headers=headers)
    assert r.status == 201, await r.text()
    return await r.json()


async def add_site(client, headers, sid: int, **fields: Any) -> dict[str, Any]:
    body = {"name": "Hội trường tỉnh", "kind": "hall", "unit": None, "capacity": 300, **fields}
    r = await client.post(f"/api/v1/sessions/{sid}/sites", json=body, headers=headers)
    assert r.status == 201, await r.text()
    return await r.json()


# The scope tests' roster: a province P with districts D1 (cells C11, C12) and D2 (C21), and
# another province Q with one cell CQ; members in each cell, none directly in a district.
SCOPE_UNITS = [
    {"code": "P", "name": "Tỉnh ủy Bắc Kạn", "parent": None},
    {"code": "D1", "name": "Đảng bộ huyện Bạch Thông", "parent": "P"},
    {"code": "C11", "name": "Chi bộ xã Quân Hà", "parent": "D1"},
    {"code": "C12", "name": "Chi bộ xã Cẩm Giàng", "parent": "D1"},
    {"code": "D2", "name": "Đảng bộ huyện Chợ Mới", "parent": "P"},
    {"code": "C21", "name": "Chi bộ xã Yên Đĩnh", "parent": "D2"},
    {"code": "Q", "name": "Tỉnh ủy Thái Nguyên", "parent": None},
    {"code": "CQ", "name": "Chi bộ phường Phan Đình Phùng", "parent": "Q"},
]
SCOPE_MEMBERS = [
    {"code": "A-01", "full_name": "Nguyễn Văn An", "unit": "C11"},
    {"code": "A-02", "full_name": "Hoàng Thị Bình", "unit": "C11"},
    {"code": "A-03", "full_name": "Nông Văn Cường", "unit": "C12"},
    {"code": "B-01", "full_name": "Ma Thị Phượng", "unit": "C21"},
    {"code": "B-02", "full_name": "Đàm Văn Giang", "unit": "C21"},
    {"code": "Q-01", "full_name": "Lục Văn Long", "unit": "CQ"},
]
SCOPE_PASSWORD = "mật-khẩu-đủ-dài-123"


async def post_json(http, path: str, body: Any, headers: dict[str, str], status: int) -> Any:
    """POST and check the status; the answer's JSON. `http` is an aiohttp ClientSession with a
    base_url or a test client: the response is released either way."""
    async with http.post(path, json=body, headers=headers) as r:
        assert r.status == status, await r.text()
        return await r.json()


async def seed_scope_roster(
    http, headers: dict[str, str], units: Any = SCOPE_UNITS, members: Any = SCOPE_MEMBERS
) -> None:
    """The units, then the members (SCOPE_UNITS/SCOPE_MEMBERS unless given)."""
    await post_json(http, "/api/v1/units", {"units": units}, headers, 200)
    await post_json(http, "/api/v1/members", {"members": members}, headers, 200)


async def signed_in_user(
    http, headers: dict[str, str], login: str, unit: str, role: str = "viewer"
) -> str:
    """A new user of `role` in `unit`, created with the admin `headers`, then signed in through
    the form's API: their session token."""
    user = {"login": login, "full_name": "Người xem", "unit": unit, "role": role}
    await post_json(http, "/api/v1/users", {**user, "password": SCOPE_PASSWORD}, headers, 201)
    body = {"login": login, "password": SCOPE_PASSWORD}
    return str((await post_json(http, "/api/v1/auth/login", body, {}, 200))["token"])


async def call(http, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    """(status, JSON answer or None) of one request with `token` as the bearer ("" for none):
    a refusal is read as data, not raised."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, path, json=body, headers=headers) as resp:
        if resp.content_type != "application/json":
            return resp.status, None
        return resp.status, await resp.json()
