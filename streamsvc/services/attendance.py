"""Reconciled attendance: records, summaries, exports and the yearly absence report.

Each use case loads a session's facts (`Reconciliation`), then makes one pass over the
store's two sorted streams (expected members by code, events by member, ts, id): `reconcile`
merges them and a writer turns each record into bytes as it comes, so a 2,000,000-member
session is exported in constant memory. The pass is CPU work, so it runs in a worker thread
(`WorkerThreads`), which pulls the streams and pushes the bytes through the loop.
"""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from datetime import datetime
from typing import Any, Literal

from streamsvc.domain.attendance import EvidenceWindow, Reconciliation, UnexpectedMembers
from streamsvc.domain.models import ActionPlan, Evidence, Member, PlanRule, Session, Unit
from streamsvc.domain.plans import owing_units, unit_plans
from streamsvc.domain.policy import UnitTree
from streamsvc.domain.reconcile import (
    AttendanceRecord,
    Summary,
    SummaryTally,
    in_scope,
    reconcile,
)
from streamsvc.domain.reports import AbsenceReport, AbsenceTally, YearlyReport, YearlyTally
from streamsvc.errors import InvalidInput, NotFound
from streamsvc.exports import (
    stream_xlsx,
    stream_yearly_xlsx,
    write_csv,
    write_json,
    write_rows_csv,
)
from streamsvc.exports.columns import YEARLY_MEMBER_COLUMNS, yearly_member_rows
from streamsvc.ports import Store
from streamsvc.services.worker import LoopBridge, Output, WorkerThreads

__all__ = ["FORMATS", "AttendanceService", "Format", "ScopeCodes", "Visible"]

Format = Literal["json", "csv", "xlsx"]
FORMATS: tuple[str, ...] = ("json", "csv", "xlsx")

#: Progress is reported every this many records.
PROGRESS_STEP = 1000

Progress = Callable[[int], object]
#: The unit codes a user's scope holds; None is the whole tree (the v1 admin token, the CLI).
ScopeCodes = frozenset[str] | None
#: Which of these sessions the caller may see (the policy's answer, asked by the handler).
Visible = Callable[[list[Session]], Awaitable[list[Session]]]
Work = Callable[[LoopBridge, Iterator[AttendanceRecord], SummaryTally], object]


class AttendanceService:
    """Reconciles sessions for the HTTP API and the command line alike."""

    def __init__(self, store: Store, *, workers: int = 2) -> None:
        self.store = store
        self._threads = WorkerThreads(workers, name="attendance")

    async def close(self) -> None:
        await self._threads.close()

    async def load(self, session_id: int) -> Reconciliation:
        """What the pass needs besides the two streams; NotFound for an unknown session."""
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFound(f"session {session_id} does not exist", code="unknown_session")
        sites = {site.id: site for site in await self.store.list_sites(session_id)}
        units = {unit.code: unit for unit in await self.store.list_units()}
        unexpected = await self.store.list_unexpected_members(session_id)
        return Reconciliation(
            session,
            sites,
            units,
            await self.store.list_excuses(session_id),
            frozenset(await self.store.list_made_up(session_id)),
            unexpected,
            await self.store.list_evidence(session_id, sorted(unexpected)) if unexpected else {},
            await self.store.list_makeup_evidence(session_id),
        )

    async def export(
        self,
        rec: Reconciliation,
        fmt: Format,
        out: Output,
        *,
        scope: ScopeCodes = None,
        progress: Progress | None = None,
    ) -> Summary:
        """Write the records as `fmt` to `out` in one pass; returns the session's SUMMARY.

        `out` is a binary file (written from the worker thread) or an object with an async
        `write`, such as a prepared aiohttp StreamResponse (written through the loop).
        With a `scope`, only members whose unit is in it are written and counted, and the
        workbook's summary sheet holds only its units.
        """
        if fmt not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", {"field": "format"})

        def work(
            bridge: LoopBridge, records: Iterator[AttendanceRecord], tally: SummaryTally
        ) -> None:
            write = bridge.writer(out)
            if fmt == "csv":
                write_csv(records, rec.unit_names, write)
            elif fmt == "json":
                write_json(rec.session.id, records, tally.total, write)
            else:
                stream_xlsx(
                    records, rec.unit_names, lambda: (rec.by_unit(tally), tally.total()), write
                )

        tally = await self._pass(rec, work, progress, scope)
        return tally.total()

    async def summary(
        self, rec: Reconciliation, *, scope: ScopeCodes = None
    ) -> tuple[list[tuple[Unit, Summary]], Summary]:
        """Every unit of the audience (in `scope`) with its SUMMARY, and the total (of the
        members in `scope`)."""

        def work(
            bridge: LoopBridge, records: Iterator[AttendanceRecord], tally: SummaryTally
        ) -> None:
            for _ in records:
                pass

        tally = await self._pass(rec, work, None, scope)
        return rec.by_unit(tally), tally.total()

    async def records(
        self, rec: Reconciliation, *, scope: ScopeCodes = None
    ) -> list[AttendanceRecord]:
        """Every record (in `scope`), in memory: for tests and small sessions, not for exports."""
        found: list[AttendanceRecord] = []
        await self._pass(rec, lambda bridge, records, tally: found.extend(records), None, scope)
        return found

    async def absences(
        self,
        start: datetime,
        end: datetime,
        *,
        scope: ScopeCodes = None,
        visible: Visible | None = None,
        progress: Progress | None = None,
    ) -> AbsenceReport:
        """The members absent, or attended without completing, at the closed sessions
        starting in [start, end), by code.

        Each session is reconciled exactly as for its export, so the report cannot disagree
        with the attendance sheets. Open sessions are left out: until the close, `absent`
        only means not yet seen. A scoped caller gets only the sessions `visible` keeps (a
        hidden session's id must not show up in the report) and only the members in `scope`.
        """
        absences = AbsenceTally()

        def collect(session_id: int) -> Work:
            return lambda bridge, records, tally: absences.add_session(session_id, records)

        for session in await self._closed(start, end, visible):
            await self._pass(await self.load(session.id), collect(session.id), progress, scope)
        return absences.report(start, end)

    async def yearly(
        self,
        start: datetime,
        end: datetime,
        *,
        scope: ScopeCodes = None,
        visible: Visible | None = None,
        progress: Progress | None = None,
    ) -> YearlyReport:
        """The yearly report over the closed sessions starting in [start, end): per member
        (in `scope`) the sessions expected at, absent, excused, made up and incomplete; per
        unit (in `scope`, its whole subtree) the members expected, attended and completed,
        summed over the sessions, and the action plans owed and handed in.

        Each session is reconciled as for its export, but tallied over the whole tree rather
        than its audience, so a province's row counts a district's own sessions too.
        """
        units = {unit.code: unit for unit in await self.store.list_units()}
        tree = UnitTree(units.values())
        yearly = YearlyTally(units)
        roots = sorted(code for code, unit in units.items() if unit.parent is None)

        def collect(session_id: int) -> Work:
            return lambda bridge, records, tally: yearly.add_records(session_id, records)

        for session in await self._closed(start, end, visible):
            rec = await self.load(session.id)
            whole = SummaryTally(rec.units, roots, scope)
            await self._pass(rec, collect(session.id), progress, scope, whole)
            yearly.add_summaries(whole.by_unit())
            if session.plans is not None:
                plans = await self.store.list_plans(session.id)
                yearly.add_plans(_owed_plans(session, session.plans, tree, plans), scope)
        return yearly.report(start, end)

    async def write_yearly(
        self, report: YearlyReport, fmt: Literal["csv", "xlsx"], out: Output
    ) -> None:
        """Write the yearly report as CSV (its members) or as the workbook (members, units),
        in a worker thread: a province's members are many rows."""
        units = {unit.code: unit.name for unit in await self.store.list_units()}

        def run(bridge: LoopBridge) -> None:
            write = bridge.writer(out)
            if fmt == "csv":
                write_rows_csv(YEARLY_MEMBER_COLUMNS, yearly_member_rows(report, units), write)
            else:
                stream_yearly_xlsx(report, units, write)

        await self._threads.run(run)

    async def _closed(
        self, start: datetime, end: datetime, visible: Visible | None
    ) -> list[Session]:
        """The closed sessions starting in [start, end) that the caller may see, oldest first."""
        closed = [
            s
            for s in await self.store.list_sessions()
            if s.state == "closed" and start <= s.starts_at < end
        ]
        if visible is not None:
            closed = await visible(closed)
        return sorted(closed, key=lambda s: (s.starts_at, s.id))

    async def _pass(
        self,
        rec: Reconciliation,
        work: Work,
        progress: Progress | None,
        scope: ScopeCodes,
        tally: SummaryTally | None = None,
    ) -> SummaryTally:
        """Run `work` over the reconciled records (of the members in `scope`) in a worker
        thread; returns the tally of those records (`tally`, or one over the audience)."""
        session_id = rec.session.id
        members = self.store.iter_expected_members(session_id)
        events = self.store.iter_events(session_id, by_member=True)
        if tally is None:
            tally = rec.tally(scope)

        def run(bridge: LoopBridge) -> None:
            def fetch(codes: Sequence[str]) -> dict[str, Evidence]:
                return bridge.call(self.store.list_evidence(session_id, codes))

            evidence = EvidenceWindow(rec.evidence, fetch)

            def newcomer(code: str) -> Member | None:
                # checked in unexpectedly while the pass ran: their evidence is kept too
                member = bridge.call(self._member(code))
                if member is not None:
                    evidence.keep(fetch([code]))
                return member

            records = reconcile(
                rec.session,
                rec.sites,
                evidence.follow(bridge.pull(members)),
                bridge.pull(events),
                rec.excuses,
                rec.made_up,
                UnexpectedMembers(rec.unexpected, newcomer),
                evidence,
                rec.makeup_evidence,
            )
            if scope is not None:
                # Every member is still reconciled (a member out of scope who checked in
                # must not turn up as unexpected); only the records leaving the pass are cut.
                records = in_scope(records, scope)
            work(bridge, _counted(records, tally, progress), tally)

        try:
            await self._threads.run(run)
        finally:
            # Already finished when the pass ran to the end; otherwise this releases the
            # cursors and their connections now, on the loop they belong to.
            await _close(members)
            await _close(events)
        return tally

    async def _member(self, code: str) -> Member | None:
        return (await self.store.get_members([code])).get(code)


def _owed_plans(
    session: Session, rule: PlanRule, tree: UnitTree, plans: list[ActionPlan]
) -> Iterator[tuple[str, bool]]:
    """Each plan the session's rule makes a unit owe, as (unit code, handed in by now)."""
    owing = owing_units(rule, session.audience, tree)
    for unit in unit_plans(rule, owing, {}, plans):
        for kind in unit.owed:
            yield unit.code, kind in unit.plans


async def _close(stream: AsyncIterator[Any]) -> None:
    # The stores' streams are async generators; the port promises only an iterator.
    if isinstance(stream, AsyncGenerator):
        await stream.aclose()


def _counted(
    records: Iterator[AttendanceRecord], tally: SummaryTally, progress: Progress | None
) -> Iterator[AttendanceRecord]:
    """Pass the records through, counting each in `tally` and reporting progress in steps."""
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
