"""`streamsvc export` and `streamsvc report absences`: attendance files straight from the store.

No server is needed: the commands open the database themselves and run the same service
the HTTP API runs. A file is written under a temporary name and renamed at the end, so a
failed or interrupted export never leaves a file that looks complete.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from streamsvc.config import Settings
from streamsvc.domain.reports import parse_range
from streamsvc.errors import BadRequest, NotFound
from streamsvc.progress import Progress

__all__ = ["COMMANDS", "add_parsers", "replacing", "run"]

COMMANDS = ("export", "report")
EXPORT_FORMATS = ("csv", "xlsx")
REPORT_FORMATS = ("csv", "json")
REPORT_COLUMNS = (
    "member",
    "full_name",
    "unit",
    "absent",
    "sessions",
    "incomplete",
    "incomplete_sessions",
)


def add_parsers(sub: Any, helps: dict[str, str]) -> None:
    """Add `export` and `report` to the `streamsvc` command's subparsers."""
    export = sub.add_parser(
        "export", help="write a session's reconciled attendance to a CSV or XLSX file"
    )
    export.add_argument("session", type=int, metavar="SID", help="the session's id")
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, help="csv or xlsx (default: from the file's extension)"
    )
    export.add_argument("-o", "--output", type=Path, required=True, help="the file to write")
    export.add_argument("--database", help=helps["database"])

    report = sub.add_parser("report", help="reports over the closed sessions")
    reports = report.add_subparsers(
        dest="report", metavar="REPORT", required=True, parser_class=type(report)
    )
    absences = reports.add_parser(
        "absences",
        help="members absent without excuse or make-up at the closed sessions in a date range",
    )
    absences.add_argument(
        "--from", dest="start", required=True, metavar="DATE", help="first day, YYYY-MM-DD (UTC)"
    )
    absences.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="last day, YYYY-MM-DD (UTC)"
    )
    absences.add_argument("-o", "--output", type=Path, required=True, help="FILE.csv or FILE.json")
    absences.add_argument("--database", help=helps["database"])


def run(args: argparse.Namespace) -> int:
    """Run `export` or `report`; a bad argument ends in one line on stderr and exit 2."""
    try:
        if args.command == "export":
            fmt = args.format or _format_of(args.output, EXPORT_FORMATS)
            return asyncio.run(_export(args, fmt))
        fmt = _format_of(args.output, REPORT_FORMATS)
        start, end = parse_range(args.start, args.end)
        return asyncio.run(_absences(args, fmt, start, end))
    except (BadRequest, NotFound) as exc:
        print(f"streamsvc {args.command}: error: {exc.message}", file=sys.stderr)
        return 2


def _format_of(path: Path, allowed: tuple[str, ...]) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in allowed:
        raise BadRequest(f"{path} must end in {' or '.join('.' + f for f in allowed)}")
    return fmt


async def _open(args: argparse.Namespace) -> Any:
    from streamsvc.storage import open_store

    store = open_store(Settings.from_env(database=args.database).database)
    await store.open()
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store


@contextlib.contextmanager
def replacing(path: Path) -> Any:
    """A binary file that becomes `path` only when the block finishes without an error."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


async def _export(args: argparse.Namespace, fmt: str) -> int:
    from streamsvc.services.attendance import AttendanceService

    store = await _open(args)
    service = AttendanceService(store, workers=1)
    try:
        rec = await service.load(args.session)
        progress = Progress(f"session {args.session}", rec.size)
        with replacing(args.output) as out:
            summary = await service.export(rec, fmt, out, progress=progress.advance)  # type: ignore[arg-type]
        progress.finish()
    finally:
        await service.close()
        await store.close()
    print(
        f"{args.output}: {rec.size:,} records; {summary.expected:,} expected, "
        f"participation {summary.rate:.2%}"
    )
    return 0


async def _absences(args: argparse.Namespace, fmt: str, start: datetime, end: datetime) -> int:
    from streamsvc.services.attendance import AttendanceService

    store = await _open(args)
    service = AttendanceService(store, workers=1)
    try:
        progress = Progress("reconciling closed sessions")
        report = await service.absences(start, end, progress=progress.advance)
        progress.finish()
    finally:
        await service.close()
        await store.close()
    with replacing(args.output) as out:
        if fmt == "json":
            out.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
        else:
            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(REPORT_COLUMNS)
            for m in report.members:
                writer.writerow(
                    (
                        m.member,
                        m.full_name,
                        m.unit,
                        len(m.sessions),
                        ";".join(map(str, m.sessions)),
                        len(m.incomplete_sessions),
                        ";".join(map(str, m.incomplete_sessions)),
                    )
                )
            out.write("\ufeff".encode() + text.getvalue().encode())
    print(
        f"{args.output}: {len(report.members):,} members absent or incomplete at least once "
        f"in {len(report.sessions):,} closed sessions"
    )
    return 0
