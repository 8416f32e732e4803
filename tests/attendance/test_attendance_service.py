"""The service on both stores with a session larger than one pull from the store.

The store must hand members and events over in Python's string order (COLLATE "C" in
PostgreSQL), or the merge in `reconcile` refuses them; these tests would see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from streamsvc.domain.checkin import Incoming, decide_batch
from streamsvc.domain.models import Event, Member, NewSite, Unit
from streamsvc.domain.reconcile import reconcile, summarize
from streamsvc.services.attendance import AttendanceService
from streamsvc.services.sessions import NewSessionData
from streamsvc.services.worker import PULL

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
NOW = START + timedelta(minutes=30)
SIZE = PULL * 2 + 123  # three pulls of members, more of events


def code(i: int) -> str:
    # Upper case, lower case and a non-ASCII first letter: sorts differently in most collations.
    return f"{'AbĐ'[i % 3]}{i:06d}"


async def big_session(store) -> tuple[int, list[Member], list[Event]]:
    units = [Unit("P", "Tỉnh ủy"), Unit("X", "Ngoài")] + [
        Unit(f"C{u}", f"Chi bộ {u}", "P") for u in range(5)
    ]
    await store.upsert_units(units)
    members = [Member(code(i), f"Đảng viên số {i}", f"C{i % 5}") for i in range(SIZE)]
    outsider = Member("a-outsider", "Người ngoài", "X")
    await store.upsert_members([*members, outsider])
    session = await store.create_session(
        NewSessionData("Nghị quyết", START, END, ("P",), 15, None), from_excused_of=None
    )
    hall = await store.create_site(NewSite(session.id, "Hội trường", "hall", None, None, "h1"))
    bridge = await store.create_site(NewSite(session.id, "Điểm cầu", "bridge", None, None, "h2"))
    minutes = itertools.cycle([-20, -5, 0, 14, 16, 40])
    items = []
    for i, member in enumerate(members):
        if i % 7 == 6:
            continue  # absent
        ts = START + timedelta(minutes=next(minutes), seconds=i % 50)
        items.append((session.id, hall, Incoming(str(uuid.uuid4()), "checkin", ts, member.code)))
        if i % 3 == 0:
            out = ts + timedelta(minutes=30)
            items.append(
                (session.id, bridge, Incoming(str(uuid.uuid4()), "checkout", out, member.code))
            )
    items.append((session.id, hall, Incoming("late", "checkin", START, outsider.code)))
    for part in range(0, len(items), 5000):
        await store.commit_events(items[part : part + 5000], decide_batch, NOW)
    for i in range(0, SIZE, 97):
        await store.add_excuse(session.id, code(i), f"lý do {i}")
    events = [e async for e in store.iter_events(session.id)]
    return session.id, [*members, outsider], events


async def test_records_match_the_pure_reconciliation(store):
    sid, members, events = await big_session(store)
    service = AttendanceService(store)
    try:
        rec = await service.load(sid)
        assert set(rec.unexpected) == {"a-outsider"}
        records = await service.records(rec)
    finally:
        await service.close()
    expected = sorted((m for m in members if m.unit != "X"), key=lambda m: m.code)
    ordered = sorted((e for e in events if e.member), key=lambda e: (e.member, e.ts, e.id))
    want = list(
        reconcile(
            rec.session, rec.sites, expected, ordered, rec.excuses, frozenset(), rec.unexpected
        )
    )
    assert records == want
    assert len(records) == SIZE + 1
    summary = summarize(records)
    assert summary.expected == SIZE
    assert summary.excused > 0 and summary.absent > 0 and summary.late > 0


class SlowClient:
    """A client reading its download one part at a time: a write waits until the part before
    it was read, as a full socket buffer makes an aiohttp response wait."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)

    async def write(self, data: bytes) -> None:
        await self.queue.put(data)

    async def read(self) -> None:
        while True:
            self.parts.append(await self.queue.get())
            self.queue.task_done()


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_to_a_file_and_a_slow_async_output_agree(store, fmt):
    sid, _, _ = await big_session(store)
    service = AttendanceService(store)
    to_file, to_loop = io.BytesIO(), SlowClient()
    reader = asyncio.create_task(to_loop.read())
    try:
        rec = await service.load(sid)
        first = await service.export(rec, fmt, to_file)
        second = await service.export(rec, fmt, to_loop)
        await to_loop.queue.join()  # the last part read too
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await service.close()
    assert first == second
    assert first.expected == SIZE
    assert to_file.getvalue() == b"".join(to_loop.parts)
    assert len(to_loop.parts) > 1  # written as it went, not at the end


async def test_a_cancelled_export_lets_go_of_the_store(store):
    sid, _, _ = await big_session(store)
    service = AttendanceService(store, workers=1)
    started = asyncio.Event()

    class StuckOutput:
        async def write(self, data: bytes) -> None:
            started.set()
            await asyncio.Event().wait()  # a client that never reads

    try:
        rec = await service.load(sid)
        task = asyncio.create_task(service.export(rec, "csv", StuckOutput()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The one worker is free again and the streams were closed: a second export runs.
        summary = await service.export(rec, "csv", io.BytesIO())
    finally:
        await service.close()
    assert summary.expected == SIZE


async def test_an_unexpected_checkin_during_the_pass_is_not_an_error(store):
    """The list of unexpected members is read first; one who checks in after that still
    gets a record instead of failing the export."""
    sid, _, _ = await big_session(store)
    await store.upsert_members([Member("a-late", "Đến muộn", "X")])
    service = AttendanceService(store)
    try:
        rec = await service.load(sid)
        hall = next(site for site in rec.sites.values() if site.kind == "hall")
        item = (sid, hall, Incoming(str(uuid.uuid4()), "checkin", START, "a-late"))
        await store.commit_events([item], decide_batch, NOW)
        records = await service.records(rec)
    finally:
        await service.close()
    late = next(r for r in records if r.member == "a-late")
    assert (late.full_name, late.flags) == ("Đến muộn", ("not_in_audience",))
