"""One small province and two sessions built through the HTTP API, for the attendance tests.

Session S (audience D1) has every case of the contract's RECORD once; a make-up session of S
takes its audience from the members excused at S. Times sit around `now` so that check-ins
fall inside the accepted window; expected values are relative to `start`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

UNITS = [
    {"code": "P", "name": "Tỉnh ủy Bắc Kạn", "parent": None},
    {"code": "D1", "name": "Đảng bộ huyện Bạch Thông", "parent": "P"},
    {"code": "C1", "name": "Chi bộ xã Quân Hà", "parent": "D1"},
    {"code": "C2", "name": "Chi bộ xã Cẩm Giàng", "parent": "D1"},
    {"code": "D2", "name": "Đảng bộ huyện Chợ Mới", "parent": "P"},
    {"code": "C3", "name": "Chi bộ xã Yên Đĩnh", "parent": "D2"},
]
# Codes mix case and a non-ASCII letter: the store must sort them as Python does.
MEMBERS = [
    {"code": "DV-01", "full_name": "Nguyễn Văn An", "unit": "C1"},
    {"code": "DV-02", "full_name": "Hoàng Thị Bình", "unit": "C1"},
    {"code": "DV-03", "full_name": "Nông Văn Cường", "unit": "C1"},
    {"code": "DV-04", "full_name": "Lý Thị Dung", "unit": "C1"},
    {"code": "DV-05", "full_name": "Triệu Văn Em", "unit": "C1"},
    {"code": "DV-06", "full_name": "Ma Thị Phượng", "unit": "C2"},
    {"code": "dv-07", "full_name": "Đàm Văn Giang", "unit": "C2"},
    {"code": "ĐV-08", "full_name": "Đồng Thị Hà", "unit": "C2"},
    {"code": "DV-09", "full_name": "Hà Văn Ích", "unit": "C2"},
    {"code": "DV-10", "full_name": "Vi Thị Kim", "unit": "C2"},
    {"code": "AX-01", "full_name": "Lục Văn Long", "unit": "C3"},
]
NAMES = {m["code"]: m["full_name"] for m in MEMBERS}
UNIT_NAMES = {u["code"]: u["name"] for u in UNITS}
HANOI = timezone(timedelta(hours=7))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def z(moment: datetime | None) -> str | None:
    """As the service answers a time: UTC, whole seconds, `Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    start: datetime
    end: datetime
    sid: int = 0
    makeup: int = 0
    sites: dict[str, dict[str, Any]] = field(default_factory=dict)

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)


async def post(client: Any, path: str, body: Any, headers: dict[str, str], status: int) -> Any:
    r = await client.post(path, json=body, headers=headers)
    assert r.status == status, await r.text()
    return await r.json()


async def checkins(client: Any, sid: int, site: dict[str, Any], *items: dict[str, Any]) -> None:
    body = await post(
        client, f"/api/v1/sessions/{sid}/checkins", {"items": list(items)}, auth(site["token"]), 200
    )
    assert [r["result"] for r in body["results"]] == ["accepted"] * len(items), body


def event(kind: str, member: str, ts: datetime, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "id": str(uuid.uuid4()), "member": member, "ts": iso(ts), **extra}


async def seed_roster(client: Any, headers: dict[str, str]) -> None:
    await post(client, "/api/v1/units", {"units": UNITS}, headers, 200)
    await post(client, "/api/v1/members", {"members": MEMBERS}, headers, 200)


async def create_session(
    client: Any, headers: dict[str, str], start: datetime, end: datetime, **fields: Any
) -> int:
    body = {
        "title": "Học tập, quán triệt Nghị quyết Trung ương 6 khóa XII",
        "starts_at": start.astimezone(HANOI).isoformat(),
        "ends_at": end.astimezone(HANOI).isoformat(),
        "late_after_minutes": 15,
        **fields,
    }
    return (await post(client, "/api/v1/sessions", body, headers, 201))["id"]


async def add_site(client: Any, headers: dict[str, str], sid: int, name: str, kind: str) -> Any:
    body = {"name": name, "kind": kind, "unit": None, "capacity": None}
    return await post(client, f"/api/v1/sessions/{sid}/sites", body, headers, 201)


async def build_session(client: Any, headers: dict[str, str]) -> World:
    """Session S, open, with its check-ins and excuses; no make-up session yet."""
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=30)
    world = World(start, start + timedelta(hours=2))
    await seed_roster(client, headers)
    world.sid = sid = await create_session(client, headers, world.start, world.end, audience=["D1"])
    hall = world.sites["hall"] = await add_site(client, headers, sid, "Hội trường Huyện ủy", "hall")
    bridge = world.sites["bridge"] = await add_site(
        client, headers, sid, "Điểm cầu xã Quân Hà", "bridge"
    )
    study = world.sites["self_study"] = await add_site(
        client, headers, sid, "Tự nghiên cứu", "self_study"
    )
    voided = event("checkin", "DV-09", world.at(1))
    await checkins(
        client,
        sid,
        hall,
        event("checkin", "DV-01", world.at(-5).astimezone(HANOI)),
        event("checkin", "DV-03", world.at(-10)),
        event("checkout", "DV-03", world.at(10)),
        event("checkin", "DV-04", world.at(0)),
        voided,
        {"type": "void", "id": str(uuid.uuid4()), "target": voided["id"]},
        event("checkin", "AX-01", world.at(2)),
        {"type": "guests", "id": str(uuid.uuid4()), "count": 40, "ts": iso(world.at(3))},
    )
    await checkins(
        client,
        sid,
        bridge,
        event("checkin", "DV-02", world.at(20)),
        event("checkin", "DV-04", world.at(5)),
    )
    await checkins(client, sid, study, event("checkin", "DV-10", world.at(28)))
    for member, reason in [("DV-05", "ốm nằm viện"), ("dv-07", "đi công tác")]:
        body = {"member": member, "reason": reason}
        await post(client, f"/api/v1/sessions/{sid}/excuses", body, headers, 201)
    return world


async def build_world(client: Any, headers: dict[str, str]) -> World:
    """Session S and its make-up session, both closed; one check-out of S came in late."""
    world = await build_session(client, headers)
    sid = world.sid
    world.makeup = makeup = await create_session(
        client, headers, world.at(10), world.at(70), makeup_for=sid
    )
    site = world.sites["makeup"] = await add_site(
        client, headers, makeup, "Hội trường Đảng ủy xã", "hall"
    )
    await checkins(
        client,
        makeup,
        site,
        event("checkin", "DV-05", world.at(11)),
        event("checkin", "ĐV-08", world.at(12)),
    )
    await post(client, f"/api/v1/sessions/{sid}/close", {}, headers, 200)
    # Queued offline, sent after the close: accepted, flagged late_upload.
    await checkins(client, sid, world.sites["bridge"], event("checkout", "DV-04", world.at(25)))
    await post(client, f"/api/v1/sessions/{makeup}/close", {}, headers, 200)
    return world


def expected_records(world: World) -> list[dict[str, Any]]:
    """Session S's records once everything is in, by code."""
    hall, bridge, study = (world.sites[k]["id"] for k in ("hall", "bridge", "self_study"))
    at = world.at

    def rec(code: str, status: str, **fields: Any) -> dict[str, Any]:
        unit = next(m["unit"] for m in MEMBERS if m["code"] == code)
        base: dict[str, Any] = {
            "member": code,
            "full_name": NAMES[code],
            "unit": unit,
            "status": status,
            "form": None,
            "site": None,
            "site_name": None,
            "first_in": None,
            "last_out": None,
            "minutes": 0,
            "flags": [],
            "excuse": None,
            "reflection": False,
            "quiz_score": None,
            # nothing is required at S: attending is completing
            "completed": status in ("present", "late", "made_up"),
        }
        return {**base, **fields}

    hall_at = {"form": "hall", "site": hall, "site_name": "Hội trường Huyện ủy"}
    bridge_at = {"form": "bridge", "site": bridge, "site_name": "Điểm cầu xã Quân Hà"}
    return [
        rec("AX-01", "present", **hall_at, first_in=z(at(2)), minutes=118,
            flags=["not_in_audience"]),
        rec("DV-01", "present", **hall_at, first_in=z(at(-5)), minutes=120),
        rec("DV-02", "late", **bridge_at, first_in=z(at(20)), minutes=100),
        rec("DV-03", "present", **hall_at, first_in=z(at(-10)), last_out=z(at(10)), minutes=10,
            flags=["left_early"]),
        rec("DV-04", "present", **hall_at, first_in=z(at(0)), last_out=z(at(25)), minutes=25,
            flags=["multi_site", "left_early", "late_upload"]),
        rec("DV-05", "made_up", excuse="ốm nằm viện"),
        rec("DV-06", "absent"),
        rec("DV-09", "absent"),
        rec("DV-10", "present", form="self_study", site=study, site_name="Tự nghiên cứu",
            first_in=z(at(28)), minutes=92),
        rec("dv-07", "excused", excuse="đi công tác"),
        rec("ĐV-08", "made_up"),
    ]  # fmt: skip


TOTAL = {
    "expected": 10,
    "present": 4,
    "late": 1,
    "excused": 1,
    "made_up": 2,
    "absent": 2,
    "rate": 0.7,
    "completed": 7,
}
