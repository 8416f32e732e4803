"""RFC 3339 in and out. The service answers in UTC with a `Z`."""

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
    """UTC, seconds precision, `Z` suffix (`2026-05-22T00:30:00Z`)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"
