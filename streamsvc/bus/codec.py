"""The live hub's messages between instances, and their wire format on the bus.

Instances of one version talk to each other through Redis pub/sub (or a shared `MemoryBus` in
tests); nothing else reads these messages, and no other version needs to. Each message is one
JSON object (UTF-8, orjson). The keys are one letter because an `ev` message goes out after
every group commit, thousands of times a second under load, to every instance:

=========  ==========================================================================
key        value
=========  ==========================================================================
``k``      the kind: ``"ev"``, ``"conn"``, ``"site"`` or ``"rescan"`` (below)
``o``      the origin: the sending instance's id (a string); an instance ignores its own
``e``      ``ev`` only: the committed events, each a list of eleven fields in this order:
           id (str), session id (int), site id (int), type (str), ts (int microseconds
           since the Unix epoch, or null), received_at (int microseconds), member (str or
           null), count (int or null), target (str or null), voided (bool),
           late_upload (bool)
``c``      ``conn`` only: connection counts, each ``[site id, session id, count]``
``full``   ``conn`` only, present and true in a heartbeat: ``c`` is every count the origin
           has, and a site it leaves out has no connection there
``s``      ``site`` only: the session id a site was registered in (read it from the store)
=========  ==========================================================================

- ``ev``: events the origin stored: `EventsCommitted`.
- ``conn``: the origin's coordinator connections changed, or its heartbeat: `Connections`.
- ``site``: a site was registered on the origin: `SiteRegistered`.
- ``rescan``: the origin's bus came back after an outage; every instance reads the store again
  for what it may have missed: `RescanRequest`.

Events are lists rather than objects for the same reason as the short keys. Times travel as
integer microseconds so that they come back exactly as they were stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streamsvc.domain.connections import SiteCount
from streamsvc.domain.models import Event

__all__ = [
    "Connections",
    "EventsCommitted",
    "MalformedMessage",
    "Message",
    "RescanRequest",
    "SiteRegistered",
    "decode",
    "encode",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class MalformedMessage(ValueError):
    """A bus message that is not one this version sends; says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class EventsCommitted:
    origin: str
    events: Sequence[Event]


@dataclass(frozen=True, slots=True)
class Connections:
    origin: str
    counts: Sequence[SiteCount]
    full: bool = False  # a heartbeat: all of the origin's counts


@dataclass(frozen=True, slots=True)
class SiteRegistered:
    origin: str
    session_id: int


@dataclass(frozen=True, slots=True)
class RescanRequest:
    origin: str


Message = EventsCommitted | Connections | SiteRegistered | RescanRequest


def encode(message: Message) -> bytes:
    """The message as it goes on the bus."""
    body: dict[str, Any]
    match message:
        case EventsCommitted(origin, events):
            body = {"k": "ev", "o": origin, "e": [_event_row(e) for e in events]}
        case Connections(origin, counts, full):
            body = {"k": "conn", "o": origin, "c": counts}
            if full:
                body["full"] = True
        case SiteRegistered(origin, session_id):
            body = {"k": "site", "o": origin, "s": session_id}
        case RescanRequest(origin):
            body = {"k": "rescan", "o": origin}
    return orjson.dumps(body)


def decode(data: bytes, *, skip_origin: str | None = None) -> Message | None:
    """The message read from the bus, or None when it comes from `skip_origin` (an instance
    hears its own messages back from Redis: not worth building their events).
    `MalformedMessage` says why a message cannot be read."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedMessage("not a JSON object")
    origin = body.get("o")
    if not isinstance(origin, str):
        raise MalformedMessage("no origin instance (o)")
    if origin == skip_origin:
        return None
    kind = body.get("k")
    if kind == "ev":
        rows = _list(body, "e")
        return EventsCommitted(origin, [_event(row, i) for i, row in enumerate(rows)])
    if kind == "conn":
        return Connections(origin, _site_counts(_list(body, "c")), full=body.get("full") is True)
    if kind == "site":
        session_id = body.get("s")
        if type(session_id) is not int:  # bool is not an id
            raise MalformedMessage("site: the session id (s) is not an integer")
        return SiteRegistered(origin, session_id)
    if kind == "rescan":
        return RescanRequest(origin)
    raise MalformedMessage(f"unknown kind (k): {kind!r}")


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise MalformedMessage(f"{body['k']}: {key} is not a list")
    return value


def _site_counts(rows: list[Any]) -> list[SiteCount]:
    """Every instance sends all its sites' counts every few seconds (10,000 on the national
    day), so this is one plain loop: a generator per row cost a tenth of an instance's CPU."""
    counts: list[SiteCount] = []
    append = counts.append
    for index, row in enumerate(rows):
        if type(row) is not list or len(row) != 3:
            raise MalformedMessage(f"conn: count {index} is not [site, session, count >= 0]")
        site, session, count = row
        if type(site) is not int or type(session) is not int or type(count) is not int or count < 0:
            raise MalformedMessage(f"conn: count {index} is not [site, session, count >= 0]")
        append((site, session, count))
    return counts


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _event_row(e: Event) -> list[Any]:
    ts = None if e.ts is None else _micros(e.ts)
    return [
        e.id,
        e.session_id,
        e.site_id,
        e.type,
        ts,
        _micros(e.received_at),
        e.member,
        e.count,
        e.target,
        e.voided,
        e.late_upload,
    ]


def _optional(value: object, kind: type) -> bool:
    return value is None or type(value) is kind


def _event(row: object, index: int) -> Event:
    if not isinstance(row, list) or len(row) != 11:
        raise MalformedMessage(f"ev: event {index} is not a list of 11 fields")
    id_, session_id, site_id, type_, ts, received, member, count, target, voided, late = row
    if not (
        type(id_) is str
        and type(session_id) is int
        and type(site_id) is int
        and type(type_) is str
        and _optional(ts, int)
        and type(received) is int
        and _optional(member, str)
        and _optional(count, int)
        and _optional(target, str)
        and type(voided) is bool
        and type(late) is bool
    ):
        raise MalformedMessage(f"ev: event {index} has a field of the wrong type")
    try:
        when = None if ts is None else _EPOCH + ts * _MICROSECOND
        received_at = _EPOCH + received * _MICROSECOND
    except OverflowError:
        raise MalformedMessage(f"ev: event {index} has a time out of range") from None
    return Event(
        id_, session_id, site_id, type_, when, received_at, member, count, target, voided, late
    )
