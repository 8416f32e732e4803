"""RFC 3339 in and out: the one place the contract's time format is written.

The service answers in UTC with a `Z`, to the second (`2026-05-22T00:30:00Z`).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_ts", "parse_ts"]


def parse_ts(value: object) -> datetime | None:
    """An RFC 3339 time with an offset, as an aware UTC datetime; None when it is not one."""
    if not isinstance(value, str) or len(value) < 20 or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def format_ts(value: datetime | None) -> str | None:
    """UTC, seconds precision, `Z` suffix (`2026-05-22T00:30:00Z`).

    It runs per site per live delta and per attendance record, so it avoids `strftime`
    (several times slower than `isoformat`). A naive time is read as UTC, as the service
    keeps aware UTC times and a stray naive one can only have come from a UTC column.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")[:19] + "Z"
