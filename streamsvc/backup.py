"""`streamsvc backup FILE`: a consistent copy of the SQLite database, taken while it serves.

SQLite's online backup API copies the file page by page through a connection of its own.
The copy is made inside one read transaction, so it is the database as it stood when the
backup began, every acknowledged check-in up to then included, however many check-ins are
committed meanwhile (in WAL mode a reader never blocks the writer, and a copy that reads one
snapshot never has to start again). The copy is written under a temporary name, checked with
`PRAGMA quick_check`, and renamed: a failed backup never leaves a file that looks complete.
PostgreSQL is backed up with its own tools (`pg_dump`); see docs/operations.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamsvc.config import Settings
from streamsvc.errors import StreamsvcError
from streamsvc.progress import Progress

__all__ = ["BackupError", "BackupResult", "add_parser", "backup_sqlite", "run", "sqlite_path"]

#: Pages copied per step of the backup API (4 MiB with the default 4 KiB page).
STEP_PAGES = 1024


class BackupError(StreamsvcError):
    """The backup cannot be made; the message is the one line the command prints."""

    code = "backup_failed"


@dataclass(frozen=True, slots=True)
class BackupResult:
    pages: int
    size: int  # bytes
    seconds: float


def backup_sqlite(
    source: Path, target: Path, on_progress: Callable[[int, int], None] | None = None
) -> BackupResult:
    """Copy the live database `source` to `target` (replaced if it exists) as of one moment.

    `on_progress(copied, total)` is called after each step of `STEP_PAGES` pages."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError("the backup must go to another file than the database itself")
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial")
    started = time.monotonic()
    try:
        src = sqlite3.connect(source, isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source}: {exc}") from None
    try:
        _remove(partial)
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            src.execute("PRAGMA busy_timeout=30000")
            # one read transaction for the whole copy: one snapshot, however long it takes
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
            src.backup(dst, pages=STEP_PAGES, progress=_progress(on_progress))
            src.execute("COMMIT")
            dst.execute("PRAGMA journal_mode=DELETE")  # the copy is one file, without a WAL
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy failed its check: {check}")
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
        os.replace(partial, target)
        _fsync_dir(target.parent)
    except sqlite3.Error as exc:
        _remove(partial)
        raise BackupError(f"the backup failed: {exc}") from None
    except OSError as exc:
        _remove(partial)
        raise BackupError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(partial)
        raise
    finally:
        src.close()
    return BackupResult(pages, target.stat().st_size, time.monotonic() - started)


def _progress(
    on_progress: Callable[[int, int], None] | None,
) -> Callable[[int, int, int], object] | None:
    if on_progress is None:
        return None

    def step(status: int, remaining: int, total: int) -> None:
        on_progress(total - remaining, total)

    return step


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync_dir(folder: Path) -> None:
    """The rename itself on disk too, so a backup reported done survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:` database URL; any other database is a `BackupError`."""
    scheme = urlsplit(url).scheme
    if scheme.startswith("postgres"):
        raise BackupError(
            "this is a PostgreSQL database: back it up with pg_dump (see docs/operations.md)"
        )
    if scheme != "sqlite":
        raise BackupError("streamsvc backup copies SQLite databases (sqlite:///path/to/file.db)")
    from streamsvc.storage.sqlite import SqliteStore

    try:
        path = SqliteStore.from_url(url).path
    except StreamsvcError as exc:
        raise BackupError(exc.message) from None
    return Path("/" + path.lstrip("/")) if path.startswith("/") else Path(path)  # not //tmp


# --- the command -------------------------------------------------------------------------------


def add_parser(sub: Any, helps: dict[str, str]) -> None:
    """Add `backup` to the `streamsvc` command's subparsers."""
    backup = sub.add_parser(
        "backup", help="copy the SQLite database to FILE, safely while the service runs"
    )
    backup.add_argument("file", type=Path, metavar="FILE", help="the copy to write (replaced)")
    backup.add_argument("--database", help=helps["database"])


def run(args: argparse.Namespace) -> int:
    """`streamsvc backup`: a progress line on stderr, one line when done; errors in one line."""
    try:
        source = sqlite_path(Settings.from_env(database=args.database).database)
        progress = Progress(f"backing up {source.name}", force=True)

        def advance(copied: int, total: int) -> None:
            progress.total = total
            progress.advance(copied - progress.done)

        result = backup_sqlite(source, args.file, advance)
        progress.finish()
    except BackupError as exc:
        print(f"streamsvc backup: error: {exc.message}", file=sys.stderr)
        return 1
    print(
        f"backed up {source} to {args.file}: {result.pages:,} pages, "
        f"{result.size / 1048576:.1f} MiB in {result.seconds:.1f} s"
    )
    return 0
