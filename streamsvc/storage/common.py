"""Small helpers both stores share: time columns, row mapping, chunking, search text."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from streamsvc.domain.text import fold

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime | None) -> int | None:
    """Aware datetime to integer microseconds since the epoch (SQLite's time column)."""
    if value is None:
        return None
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int | None) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)


def chunks(items: Sequence[T], size: int = 900) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def search_text(code: str, full_name: str) -> str:
    return fold(f"{code} {full_name}")


def like_pattern(query: str) -> str:
    """A LIKE pattern matching the folded query anywhere, with LIKE's wildcards escaped."""
    escaped = fold(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def dump_audience(audience: Sequence[str]) -> str:
    return json.dumps(list(audience), ensure_ascii=False)


def load_audience(raw: str) -> tuple[str, ...]:
    return tuple(json.loads(raw))
