"""`streamsvc audit`: the audit log as CSV, straight from the store.

The same columns and rows as the API's `/api/v1/audit.csv` (`exports/audit.py` writes both),
for the whole tree: the command line is the operator. To stdout without a BOM, for a pipe;
to a file with one, for Excel, written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from streamsvc.cli_export import replacing
from streamsvc.cli_users import open_migrated_store
from streamsvc.domain.reports import parse_range
from streamsvc.errors import BadRequest
from streamsvc.exports.audit import write_audit_csv
from streamsvc.progress import Progress

__all__ = ["COMMANDS", "add_parser", "run"]

COMMANDS = ("audit",)


def add_parser(sub: Any, helps: dict[str, str]) -> None:
    """Add `audit` to the `streamsvc` command's subparsers."""
    audit = sub.add_parser(
        "audit",
        help="write the audit log of a date range as CSV, newest first",
        description="The audit log as CSV (at,user,action,session,target,detail,address), "
        "newest first, to stdout or to FILE.",
    )
    audit.add_argument(
        "--from", dest="start", required=True, metavar="DATE", help="first day, YYYY-MM-DD (UTC)"
    )
    audit.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="last day, YYYY-MM-DD (UTC)"
    )
    audit.add_argument("--session", type=int, metavar="ID", help="only entries about this session")
    audit.add_argument(
        "--user",
        metavar="LOGIN",
        help="only entries made by LOGIN (or admin-token, site:ID, cli)",
    )
    audit.add_argument("--action", metavar="A", help="only this action, e.g. user_created")
    audit.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write FILE instead of stdout"
    )
    audit.add_argument("--database", help=helps["database"])


def run(args: argparse.Namespace) -> int:
    """Run `audit`; a bad date ends in one line on stderr and exit 2."""
    try:
        start, end = parse_range(args.start, args.end)
    except BadRequest as exc:
        print(f"streamsvc audit: error: {exc.message}", file=sys.stderr)
        return 2
    return asyncio.run(_audit(args, start, end))


async def _audit(args: argparse.Namespace, start: datetime, end: datetime) -> int:
    store = await open_migrated_store(args.database)
    try:
        entries = store.iter_audit(
            start, end, session_id=args.session, actor=args.user, action=args.action
        )
        if args.output is None:
            out = sys.stdout.buffer

            async def to_stdout(chunk: bytes) -> None:
                out.write(chunk)

            await write_audit_csv(entries, to_stdout, bom=False)
            out.flush()
            return 0
        progress = Progress(f"audit {args.start}..{args.end}")
        with replacing(args.output) as file:

            async def to_file(chunk: bytes) -> None:
                file.write(chunk)

            count = await write_audit_csv(entries, to_file, progress=progress.advance)
        progress.finish()
    finally:
        await store.close()
    print(f"{args.output}: {count:,} audit entries", file=sys.stderr)
    return 0
