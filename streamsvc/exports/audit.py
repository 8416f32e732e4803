"""The audit log as the contract shows it: one entry as JSON, one as a CSV row, and the CSV
written as the entries stream in.

The API (`/api/v1/audit`, `/api/v1/audit.csv`) and `streamsvc audit` both use this module, so
the two cannot drift apart column by column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

from streamsvc.domain.models import AuditEntry
from streamsvc.domain.timefmt import format_ts

__all__ = ["AUDIT_COLUMNS", "audit_json", "audit_row", "write_audit_csv"]

#: The contract's entry fields, in this order, as the CSV header.
AUDIT_COLUMNS: tuple[str, ...] = ("at", "user", "action", "session", "target", "detail", "address")

BOM = "\ufeff".encode()
#: Bytes gathered before each write: few enough writes, little memory.
CHUNK = 64 * 1024


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the API's `entries` list holds it (`user` is the actor: a login,
    `admin-token`, `site:<id>` or `cli`)."""
    return {
        "at": format_ts(entry.at),
        "user": entry.actor,
        "action": entry.action,
        "session": entry.session_id,
        "target": entry.target,
        "detail": entry.detail,
        "address": entry.address,
    }


def audit_row(entry: AuditEntry) -> tuple[str, ...]:
    """An entry as a CSV row under `AUDIT_COLUMNS`; a missing value is an empty cell."""
    return (
        format_ts(entry.at) or "",
        entry.actor,
        entry.action,
        "" if entry.session_id is None else str(entry.session_id),
        entry.target or "",
        entry.detail or "",
        entry.address or "",
    )


async def write_audit_csv(
    entries: AsyncIterable[AuditEntry],
    write: Callable[[bytes], Awaitable[object]],
    *,
    bom: bool = True,
    keep: Callable[[AuditEntry], bool] | None = None,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Write the header and one row per entry as they come; returns the rows written.

    `bom` starts the bytes with a UTF-8 BOM so that Excel reads Vietnamese names right (as
    the attendance CSV does); a pipe into other tools is better off without it. `keep` drops
    entries the reader may not see (the API's scope); `progress` is told of each row.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(AUDIT_COLUMNS)
    await write((BOM if bom else b"") + buffer.getvalue().encode())
    buffer.seek(0)
    buffer.truncate()
    count = 0
    async for entry in entries:
        if keep is not None and not keep(entry):
            continue
        writer.writerow(audit_row(entry))
        count += 1
        if progress is not None:
            progress(1)
        if buffer.tell() >= CHUNK:
            await write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        await write(buffer.getvalue().encode())
    return count
