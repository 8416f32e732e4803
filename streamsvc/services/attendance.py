"""Reconciled attendance: records, summaries, exports and the yearly absence report.

A session of 2,000,000 members is reconciled in one pass: the expected members (by code) and
the events (by member, ts, id) stream from the store, `reconcile` merges them, and a writer
turns each record into bytes as it comes. That pass is CPU work, so it runs in a worker
thread of its own; the thread pulls the store's async streams and pushes bytes to an async
output through the event loop (`_Bridge`), a chunk at a time, so the loop stays free for
check-ins and a slow client slows only its own export.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, BinaryIO, Literal, Protocol, TypeVar

from streamsvc.domain.models import Member, Session, Site, Unit
from streamsvc.domain.reconcile import AttendanceRecord, Summary, SummaryTally, reconcile
from streamsvc.domain.timefmt import format_ts, parse_ts
from streamsvc.errors import InvalidInput, NotFound
from streamsvc.exports import write_csv, write_json, write_xlsx
from streamsvc.ports import Store

__all__ = [
    "FORMATS",
    "AbsenceReport",
    "AttendanceService",
    "Format",
    "Reconciliation",
    "parse_range",
]

T = TypeVar("T")

Format = Literal["json", "csv", "xlsx"]
FORMATS: tuple[str, ...] = ("json", "csv", "xlsx")

#: Rows pulled from a store stream per trip to the event loop.
PULL = 5000
#: Bytes copied per write when a finished workbook is sent out.
FILE_CHUNK = 1024 * 1024
#: Progress is reported every this many records.
PROGRESS_STEP = 1000


class AsyncOutput(Protocol):
    """Where bytes go on the event loop: an aiohttp `StreamResponse` is one."""

    async def write(self, data: bytes) -> None: ...


Output = AsyncOutput | BinaryIO
Progress = Callable[[int], object]


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Everything about a session but its two large streams, loaded before any byte goes out.

    The excuses, the made-up members and the unexpected members are held in memory: they
    are a small part of a session (people with a reason, people at a make-up session,
    people who came without being expected), unlike the expected members and the events.
    """

    session: Session
    sites: dict[int, Site]
    units: dict[str, Unit]
    excuses: dict[str, str]
    made_up: frozenset[str]
    unexpected: dict[str, Member]

    @property
    def unit_names(self) -> dict[str, str]:
        return {code: unit.name for code, unit in self.units.items()}

    @property
    def size(self) -> int:
        """How many records the pass yields: the expected members and the unexpected ones."""
        return self.session.expected + len(self.unexpected)

    def tally(self) -> SummaryTally:
        """A tally over the audience subtrees; a make-up session that took its audience from
        the excused members has no audience units, so it tallies the whole tree instead and
        `by_unit` keeps only the units with someone expected."""
        roots = self.session.audience or sorted(
            code for code, unit in self.units.items() if unit.parent is None
        )
        return SummaryTally(self.units, roots)

    def by_unit(self, tally: SummaryTally) -> list[tuple[Unit, Summary]]:
        rows = tally.by_unit()
        if self.session.audience:
            return rows
        return [(unit, summary) for unit, summary in rows if summary.expected]


@dataclass(slots=True)
class AbsentMember:
    member: str
    full_name: str
    unit: str
    sessions: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "full_name": self.full_name,
            "unit": self.unit,
            "absent": len(self.sessions),
            "sessions": self.sessions,
        }


@dataclass(frozen=True, slots=True)
class AbsenceReport:
    """Members absent (unexcused, not made up) at least once at the closed sessions counted."""

    start: datetime
    end: datetime
    sessions: list[int]
    members: list[AbsentMember]

    def to_json(self) -> dict[str, Any]:
        """The contract's `{"members": [...]}`, with the range and the sessions counted."""
        return {
            "from": format_ts(self.start),
            "to": format_ts(self.end),
            "sessions": self.sessions,
            "members": [m.to_json() for m in self.members],
        }


def parse_range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The report's `from`/`to` as a half-open UTC range [start, end).

    A date (`2026-01-31`) is a whole UTC day, `to` included; an RFC 3339 time with an offset
    is taken as is (`to` still included), for a province that wants its own midnight.
    """
    low = _bound(start, "from", end_of_day=False)
    high = _bound(end, "to", end_of_day=True)
    if high <= low:
        raise InvalidInput("to must not be before from", {"field": "to"})
    return low, high


def _bound(value: str | None, name: str, *, end_of_day: bool) -> datetime:
    if not value:
        raise InvalidInput(f"{name} is required, as a date (YYYY-MM-DD)", {"field": name})
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            moment = datetime.combine(day, time(0), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
    moment = parse_ts(value)
    if moment is None:
        raise InvalidInput(
            f"{name} must be a date (YYYY-MM-DD) or an RFC 3339 time with an offset",
            {"field": name},
        )
    return moment + timedelta(microseconds=1) if end_of_day else moment


class ExportCancelled(Exception):
    """Raised in the worker thread when the caller on the loop gave up on the export."""


class _Bridge:
    """A worker thread's way back to the event loop: run a coroutine there and wait for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._cancelled = threading.Event()
        self._pending: concurrent.futures.Future[Any] | None = None

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._cancelled.is_set():
            coro.close()
            raise ExportCancelled
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        self._pending = future
        if self._cancelled.is_set():
            # `cancel` may have run between the check above and `_pending` being set (the
            # coroutine can start on the loop first): it found nothing to interrupt.
            future.cancel()
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ExportCancelled from None
        finally:
            self._pending = None

    def cancel(self) -> None:
        """From the loop: stop the thread at its next call, and interrupt the one it waits on."""
        self._cancelled.set()
        pending = self._pending
        if pending is not None:
            pending.cancel()

    def pull(self, stream: AsyncIterator[T]) -> Iterator[T]:
        """A plain iterator over an async stream, PULL rows per trip to the loop."""
        while True:
            rows = self.call(_take(stream, PULL))
            yield from rows
            if len(rows) < PULL:
                return

    def writer(self, out: Output) -> Callable[[bytes], object]:
        """`write(bytes)` for the thread: straight to a file, or through the loop."""
        if inspect.iscoroutinefunction(out.write):
            write = out.write
            return lambda data: self.call(write(data))  # type: ignore[arg-type]
        return out.write


async def _take(stream: AsyncIterator[T], size: int) -> list[T]:
    rows: list[T] = []
    append = rows.append
    with contextlib.suppress(StopAsyncIteration):
        for _ in range(size):
            append(await anext(stream))
    return rows


class _Unexpected(Mapping[str, Member]):
    """The unexpected members read before the pass, and any who turn up during it.

    Check-ins keep coming while a session is open (and late uploads after the close), so
    the event stream may hold an unexpected member the list read a moment earlier lacked;
    such a member is looked up when the merge meets them instead of failing the export.
    """

    def __init__(self, known: dict[str, Member], lookup: Callable[[str], Member | None]) -> None:
        self._known = dict(known)
        self._lookup = lookup

    def __getitem__(self, code: str) -> Member:
        member = self._known.get(code)
        if member is None:
            member = self._lookup(code)
            if member is None:
                raise KeyError(code)
            self._known[code] = member
        return member

    def get(self, code: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[code]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


def _counted(
    records: Iterator[AttendanceRecord], tally: SummaryTally, progress: Progress | None
) -> Iterator[AttendanceRecord]:
    add = tally.add
    if progress is None:
        for record in records:
            add(record)
            yield record
        return
    count = 0
    for record in records:
        add(record)
        yield record
        count += 1
        if count == PROGRESS_STEP:
            progress(count)
            count = 0
    progress(count)


class AttendanceService:
    """Reconciles sessions for the HTTP API and the command line alike."""

    def __init__(self, store: Store, *, workers: int = 2) -> None:
        self.store = store
        # A pool of its own: its threads wait on the loop, which must never wait for a
        # thread of the default pool that an export holds (SQLite reads use that pool).
        self._workers = workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def load(self, session_id: int) -> Reconciliation:
        """What the pass needs besides the two streams; NotFound for an unknown session."""
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFound(f"session {session_id} does not exist", code="unknown_session")
        sites = {site.id: site for site in await self.store.list_sites(session_id)}
        units = {unit.code: unit for unit in await self.store.list_units()}
        return Reconciliation(
            session,
            sites,
            units,
            await self.store.list_excuses(session_id),
            frozenset(await self.store.list_made_up(session_id)),
            await self.store.list_unexpected_members(session_id),
        )

    async def export(
        self,
        rec: Reconciliation,
        fmt: Format,
        out: Output,
        *,
        progress: Progress | None = None,
    ) -> Summary:
        """Write the records as `fmt` to `out` in one pass; returns the session's SUMMARY.

        `out` is a binary file (written from the worker thread) or an object with an async
        `write`, such as a prepared aiohttp StreamResponse (written through the loop).
        """
        if fmt not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", {"field": "format"})

        def work(bridge: _Bridge, records: Iterator[AttendanceRecord], tally: SummaryTally) -> None:
            write = bridge.writer(out)
            if fmt == "csv":
                write_csv(records, rec.unit_names, write)
            elif fmt == "json":
                write_json(rec.session.id, records, tally.total, write)
            else:
                _write_workbook(rec, records, tally, write)

        tally = await self._pass(rec, work, progress)
        return tally.total()

    async def summary(self, rec: Reconciliation) -> tuple[list[tuple[Unit, Summary]], Summary]:
        """Every unit of the audience with its SUMMARY, and the total."""

        def work(bridge: _Bridge, records: Iterator[AttendanceRecord], tally: SummaryTally) -> None:
            for _ in records:
                pass

        tally = await self._pass(rec, work, None)
        return rec.by_unit(tally), tally.total()

    async def records(self, rec: Reconciliation) -> list[AttendanceRecord]:
        """Every record, in memory: for tests and small sessions, not for exports."""
        found: list[AttendanceRecord] = []
        await self._pass(rec, lambda bridge, records, tally: found.extend(records), None)
        return found

    async def absences(
        self, start: datetime, end: datetime, *, progress: Progress | None = None
    ) -> AbsenceReport:
        """The members absent at the closed sessions starting in [start, end), by code.

        Each session is reconciled exactly as for its export, so the report cannot disagree
        with the attendance sheets; only `absent` counts (an excused or made-up absence does
        not). Open sessions are left out: until the close, `absent` only means not yet seen.
        """
        sessions = sorted(
            (
                s
                for s in await self.store.list_sessions()
                if s.state == "closed" and start <= s.starts_at < end
            ),
            key=lambda s: (s.starts_at, s.id),
        )
        absent: dict[str, AbsentMember] = {}

        def work(
            session_id: int,
        ) -> Callable[[_Bridge, Iterator[AttendanceRecord], SummaryTally], None]:
            def collect(
                bridge: _Bridge, records: Iterator[AttendanceRecord], tally: SummaryTally
            ) -> None:
                for record in records:
                    if record.status != "absent":
                        continue
                    held = absent.get(record.member)
                    if held is None:
                        held = absent[record.member] = AbsentMember(
                            record.member, record.full_name, record.unit
                        )
                    else:  # the latest session's roster wins
                        held.full_name, held.unit = record.full_name, record.unit
                    held.sessions.append(session_id)

            return collect

        for session in sessions:
            await self._pass(await self.load(session.id), work(session.id), progress)
        members = [absent[code] for code in sorted(absent)]
        return AbsenceReport(start, end, [s.id for s in sessions], members)

    async def _pass(
        self,
        rec: Reconciliation,
        work: Callable[[_Bridge, Iterator[AttendanceRecord], SummaryTally], object],
        progress: Progress | None,
    ) -> SummaryTally:
        """Run `work` over the reconciled records in the worker thread; returns the tally."""
        session_id = rec.session.id
        members = self.store.iter_expected_members(session_id)
        events = self.store.iter_events(session_id, by_member=True)
        tally = rec.tally()

        def run(bridge: _Bridge) -> None:
            records = reconcile(
                rec.session,
                rec.sites,
                bridge.pull(members),
                bridge.pull(events),
                rec.excuses,
                rec.made_up,
                _Unexpected(rec.unexpected, lambda code: bridge.call(self._member(code))),
            )
            work(bridge, _counted(records, tally, progress), tally)

        try:
            await self._in_worker(run)
        finally:
            # Already finished when the pass ran to the end; otherwise this releases the
            # cursors and their connections now, on the loop they belong to.
            for stream in (members, events):
                await stream.aclose()  # type: ignore[attr-defined]
        return tally

    async def _member(self, code: str) -> Member | None:
        return (await self.store.get_members([code])).get(code)

    async def _in_worker(self, run: Callable[[_Bridge], None]) -> None:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self._workers, thread_name_prefix="attendance"
            )
            self._slots = asyncio.Semaphore(self._workers)
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        bridge = _Bridge(loop)
        async with self._slots:
            job = loop.run_in_executor(self._executor, run, bridge)
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                # Let the thread unwind before its streams are closed under it.
                bridge.cancel()
                await asyncio.wait([job])
                if not job.cancelled():
                    job.exception()  # retrieved, so it is not logged as lost
                raise


def _write_workbook(
    rec: Reconciliation,
    records: Iterator[AttendanceRecord],
    tally: SummaryTally,
    write: Callable[[bytes], object],
) -> None:
    """Build the workbook in a temporary folder (XlsxWriter needs a file), then copy it out."""
    with tempfile.TemporaryDirectory(prefix="streamsvc-xlsx-") as folder:
        path = os.path.join(folder, "attendance.xlsx")
        write_xlsx(
            path,
            records,
            rec.unit_names,
            lambda: (rec.by_unit(tally), tally.total()),
            tmpdir=folder,
        )
        with open(path, "rb") as built:
            while chunk := built.read(FILE_CHUNK):
                write(chunk)
