"""The small roster and session plan the Store port tests share (test_store_port,
test_expected_within), so that both stores are checked against the same tree and codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streamsvc.domain.models import Member, Unit
from streamsvc.ports import Store
from streamsvc.services.sessions import NewSessionData

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)  # 08:00 in Bắc Kạn
END = START + timedelta(hours=2)

# P -> A -> A1, A2 and P -> B; Z is another province.
UNITS = [
    Unit("P", "Tỉnh ủy Bắc Kạn"),
    Unit("A", "Đảng bộ huyện Ba Bể", "P"),
    Unit("A1", "Chi bộ Đồng Phúc", "A"),
    Unit("A2", "Chi bộ Nam Mẫu", "A"),
    Unit("B", "Đảng bộ huyện Na Rì", "P"),
    Unit("Z", "Tỉnh ủy Thái Nguyên"),
]
# Codes in upper and lower case and with a non-ASCII letter: code point order (B-02, B-10,
# Z-01, a-07, b-01, Đ-05) is not the order of most collations.
MEMBERS = [
    Member("a-07", "Nguyễn Văn An", "A1"),
    Member("B-02", "Hoàng Thị Đào", "A1"),
    Member("B-10", "Nông Văn Đồng", "A2"),
    Member("b-01", "Triệu Thị Mai", "A"),
    Member("Đ-05", "Lý Văn Bình", "B"),
    Member("Z-01", "Ma Thị Hương", "Z"),
]
BY_CODE = {m.code: m for m in MEMBERS}


def planned(
    audience: tuple[str, ...] = ("P",), makeup_for: int | None = None, late: int = 15
) -> NewSessionData:
    """A two-hour session from START; `makeup_for` the session whose excused it is for."""
    return NewSessionData("Nghị quyết Đại hội XIV", START, END, audience, late, makeup_for)


async def roster(store: Store) -> None:
    """UNITS and MEMBERS into `store`."""
    await store.upsert_units(UNITS)
    await store.upsert_members(MEMBERS)
