"""The coordinator client's outbox: order, acks, and what survives closing the file."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from streamsvc_clients.outbox import (
    Outbox,
    OutboxError,
    default_outbox_path,
    token_fingerprint,
)


def checkin(member: str) -> dict:
    return {"type": "checkin", "id": str(uuid.uuid4()), "member": member, "ts": "2026-05-22Z"}


def accepted(event: dict) -> dict:
    return {"id": event["id"], "result": "accepted"}


def test_pending_is_in_the_order_added(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        events = [checkin(f"M{i}") for i in range(10)]
        box.add(events[0])
        box.add_many(events[1:])
        pending = box.pending(100)
        assert [q.event for q in pending] == events
        assert [q.seq for q in pending] == sorted(q.seq for q in pending)
        assert [q.event for q in box.pending(3)] == events[:3]
        assert [q.event for q in box.pending(3, after=pending[2].seq)] == events[3:6]


def test_an_ack_takes_events_out_of_pending_and_counts_them(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        events = [checkin(f"M{i}") for i in range(5)]
        box.add_many(events)
        assert (box.counts().queued, box.counts().acked) == (5, 0)
        box.mark_acked([e["id"] for e in events[1:3]], [accepted(e) for e in events[1:3]])
        assert [q.event for q in box.pending()] == [events[0], *events[3:]]
        assert (box.counts().queued, box.counts().acked) == (3, 2)
        assert box.result(events[1]["id"]) == accepted(events[1])
        assert box.result(events[0]["id"]) is None
        # a late second ack of the same ids changes nothing
        box.mark_acked([events[1]["id"]], [{"id": events[1]["id"], "result": "duplicate"}])
        assert box.result(events[1]["id"]) == accepted(events[1])
        with pytest.raises(ValueError):
            box.mark_acked([events[0]["id"]], [])


def test_reopening_keeps_what_was_pending(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    events = [checkin(f"M{i}") for i in range(4)]
    box = Outbox(path, owner="site-a")
    box.add_many(events)
    box.mark_acked([events[0]["id"]], [accepted(events[0])])
    box.close()
    with Outbox(path, owner="site-a") as again:
        assert [q.event for q in again.pending()] == events[1:]
        assert again.counts().acked == 1


def test_an_event_added_twice_is_kept_once(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        event = checkin("M1")
        first = box.add(event)
        assert box.add(dict(event, member="other")) == first
        assert [q.event for q in box.pending()] == [event]
        with pytest.raises(ValueError):
            box.add({"type": "checkin"})


def test_is_durable_wal_and_synchronous_full(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        box.add(checkin("M1"))
        assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        # another reader (a test, a support person) sees the committed scan at once
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_belongs_to_one_site_token_and_one_client(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with (
        Outbox(path, owner=token_fingerprint("token-a")),
        pytest.raises(OutboxError, match="another streamsvc-checkin"),
    ):
        Outbox(path, owner=token_fingerprint("token-a"))
    with pytest.raises(OutboxError, match="another site token"):
        Outbox(path, owner=token_fingerprint("token-b"))
    with Outbox(path, owner=token_fingerprint("token-a")):
        pass


def test_a_file_that_is_not_an_outbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(OutboxError, match="not a usable outbox"):
        Outbox(path)


def test_the_default_path_is_per_token_and_does_not_hold_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    a, b = default_outbox_path("secret-a"), default_outbox_path("secret-b")
    assert a != b
    assert "secret" not in str(a)
    if a.is_relative_to(tmp_path):  # Linux and the BSDs follow XDG
        assert a.parent == tmp_path / "streamsvc" / "outbox"


def test_last_checkin_skips_voided_and_rejected(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        first, second, third = checkin("M1"), checkin("M2"), checkin("M3")
        box.add_many([first, second, third])
        box.mark_acked([third["id"]], [{"id": third["id"], "result": "rejected"}])
        assert box.last_checkin() == second
        void = {"type": "void", "id": str(uuid.uuid4()), "target": second["id"]}
        box.add(void)
        assert box.last_checkin() == first
        assert box.event(void["target"]) == second
        # a void the service rejected did not take anything back
        box.mark_acked([void["id"]], [{"id": void["id"], "result": "rejected"}])
        assert box.last_checkin() == second
