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
