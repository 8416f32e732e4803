"""The attendance JSON document, `{"session", "records": [...], "summary"}`, written as it goes.

The summary is only known once every record has gone past, so it comes last; the key order
is the contract's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

from streamsvc.domain.reconcile import AttendanceRecord, Summary

__all__ = ["write_json"]

CHUNK = 256 * 1024


def write_json(
    session_id: int,
    records: Iterable[AttendanceRecord],
    summary: Callable[[], Summary],
    write: Callable[[bytes], object],
) -> int:
    """Write the document; `summary` is called after the last record. Returns the records."""
    dumps = orjson.dumps
    parts: list[bytes] = [b'{"session":%d,"records":[' % session_id]
    size = count = 0
    for record in records:
        if count:
            parts.append(b",")
        data = dumps(record.to_json())
        parts.append(data)
        size += len(data)
        count += 1
        if size >= CHUNK:
            write(b"".join(parts))
            parts.clear()
            size = 0
    parts.append(b'],"summary":%s}' % dumps(summary().to_json()))
    write(b"".join(parts))
    return count
