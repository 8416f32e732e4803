"""The bus messages between instances: what one encodes the other decodes exactly, and a
message that is not one of ours is refused with a reason, never half-applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from streamsvc.bus.codec import (
    Connections,
    EventsCommitted,
    MalformedMessage,
    RescanRequest,
    SiteRegistered,
    decode,
    encode,
)
from streamsvc.domain.models import Event

RECEIVED = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
HANOI = timezone(timedelta(hours=7))

CHECKIN = Event(
    "0b1e7a52-6f3c-4b8e-9a51-0d2f6c1e3a77",
    3,
    12,
    "checkin",
    datetime(2026, 11, 30, 8, 1, 59, 999999, tzinfo=HANOI),
    RECEIVED,
    member="10000001",
)
GUESTS = Event("g-1", 3, 12, "guests", RECEIVED, RECEIVED, count=40, late_upload=True)
VOID = Event("v-1", 3, 12, "void", None, RECEIVED, target=CHECKIN.id, voided=True)


@pytest.mark.parametrize(
    "message",
    [
        EventsCommitted("inst-a", [CHECKIN, GUESTS, VOID]),
        EventsCommitted("inst-a", []),
        Connections("inst-b", [(12, 3, 2), (13, 3, 0)]),
        Connections("inst-b", [], full=True),
        SiteRegistered("inst-c", 3),
        RescanRequest("inst-d"),
    ],
    ids=["events", "no-events", "conn-change", "heartbeat", "site", "rescan"],
)
def test_what_one_instance_encodes_the_other_decodes_exactly(message):
    decoded = decode(encode(message))
    assert type(decoded) is type(message)
    if isinstance(message, Connections):  # counts come back as tuples, whatever went in
        assert (decoded.origin, list(decoded.counts), decoded.full) == (
            message.origin, message.counts, message.full
        )  # fmt: skip
    else:
        assert decoded == message


def test_event_times_come_back_to_the_microsecond():
    moment = datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
    for step in range(50):
        ts = moment + timedelta(microseconds=step * 7919)
        event = Event(f"e{step}", 1, 1, "checkin", ts, ts, member="m")
        (back,) = decode(encode(EventsCommitted("a", [event]))).events
        assert (back.ts, back.received_at) == (ts, ts)


def test_the_wire_format_is_the_documented_one():
    """Two instances of one version must agree on it; the docstring of the codec says it."""
    wire = orjson.loads(encode(EventsCommitted("a", [VOID])))
    assert wire == {
        "k": "ev",
        "o": "a",
        "e": [["v-1", 3, 12, "void", None, 1796000523456789, None, None, CHECKIN.id, True, False]],
    }
    assert orjson.loads(encode(Connections("a", [(12, 3, 1)], full=True))) == {
        "k": "conn", "o": "a", "c": [[12, 3, 1]], "full": True
    }  # fmt: skip
    assert orjson.loads(encode(Connections("a", [(12, 3, 1)]))) == {
        "k": "conn", "o": "a", "c": [[12, 3, 1]]
    }  # fmt: skip
    assert orjson.loads(encode(SiteRegistered("a", 3))) == {"k": "site", "o": "a", "s": 3}
    assert orjson.loads(encode(RescanRequest("a"))) == {"k": "rescan", "o": "a"}


def test_an_instance_skips_its_own_messages_without_reading_them():
    data = encode(EventsCommitted("me", [CHECKIN]))
    assert decode(data, skip_origin="me") is None
    assert decode(data, skip_origin="someone else") == EventsCommitted("me", [CHECKIN])


def _event_row(**change):
    row = orjson.loads(encode(EventsCommitted("a", [CHECKIN])))["e"][0]
    fields = ["id", "session", "site", "type", "ts", "received", "member", "count", "target"]
    for name, value in change.items():
        row[fields.index(name)] = value
    return row


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"k": "rescan"}', "no origin"),
        (b'{"k": "rescan", "o": 5}', "no origin"),
        (b'{"k": "gossip", "o": "a"}', "unknown kind"),
        (b'{"o": "a"}', "unknown kind"),
        (b'{"k": "ev", "o": "a"}', "e is not a list"),
        (b'{"k": "ev", "o": "a", "e": [[1, 2, 3]]}', "event 0 is not a list of 11"),
        (b'{"k": "ev", "o": "a", "e": [{"id": "x"}]}', "event 0 is not a list of 11"),
        ({"k": "ev", "o": "a", "e": [_event_row(session="3")]}, "wrong type"),
        ({"k": "ev", "o": "a", "e": [_event_row(member=10000001)]}, "wrong type"),
        ({"k": "ev", "o": "a", "e": [_event_row(received=None)]}, "wrong type"),
        ({"k": "ev", "o": "a", "e": [_event_row(ts=1.5)]}, "wrong type"),
        ({"k": "ev", "o": "a", "e": [_event_row(ts=10**18)]}, "time out of range"),
        (b'{"k": "conn", "o": "a", "c": {"12": 1}}', "c is not a list"),
        (b'{"k": "conn", "o": "a", "c": [[12, 3]]}', "count 0 is not"),
        (b'{"k": "conn", "o": "a", "c": [[12, 3, 1], [12, 3, -1]]}', "count 1 is not"),
        (b'{"k": "conn", "o": "a", "c": [[12, 3, true]]}', "count 0 is not"),
        (b'{"k": "site", "o": "a"}', "session id (s) is not an integer"),
        (b'{"k": "site", "o": "a", "s": "3"}', "session id (s) is not an integer"),
        (b'{"k": "site", "o": "a", "s": true}', "session id (s) is not an integer"),
    ],
)
def test_a_malformed_message_is_refused_saying_why(data, reason):
    if isinstance(data, dict):
        data = orjson.dumps(data)
    with pytest.raises(MalformedMessage, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode(data)
