"""A lost insert race, decided in the domain: `settle_inserted`.

Two instances may decide the same event id on facts read before either wrote it; the
store inserts with `ON CONFLICT DO NOTHING RETURNING id` and hands over the ids it really
inserted. Each store answers such an event as a resend would be answered: `duplicate`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streamsvc.domain.checkin import (
    Facts,
    Incoming,
    Outcome,
    Presence,
    decide_batch,
    settle_inserted,
)
from streamsvc.domain.models import Event, Member, Session, Site

START = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)
NOW = START + timedelta(minutes=5)
SESSION = Session(7, "Nghị quyết", START, START + timedelta(hours=2), ("BT",))
HALL = Site(1, 7, "Hội trường", "hall")
M1 = Member("M1", "Nguyễn Văn An", "C1")


def accepted(event_id: str) -> Outcome:
    return Outcome(event_id, "accepted", member=M1, unit_name="Chi bộ")


def checkin(event_id: str) -> Event:
    return Event(event_id, 7, 1, "checkin", NOW, NOW, member="M1")


@pytest.mark.parametrize(
    ("results", "decided", "inserted", "expected_results", "expected_stored"),
    [
        pytest.param(
            ["accepted", "accepted"],
            ["a", "b"],
            {"a", "b"},
            ["accepted", "accepted"],
            ["a", "b"],
            id="every-insert-landed",
        ),
        pytest.param(
            ["accepted", "accepted"],
            ["a", "b"],
            {"b"},
            ["duplicate", "accepted"],
            ["b"],
            id="one-lost",
        ),
        pytest.param(
            ["accepted", "accepted"],
            ["a", "b"],
            set(),
            ["duplicate", "duplicate"],
            [],
            id="all-lost",
        ),
        pytest.param(
            ["accepted", "rejected", "duplicate", "accepted"],
            ["a", "d"],
            {"d"},
            ["duplicate", "rejected", "duplicate", "accepted"],
            ["d"],
            id="rejections-and-resends-untouched",
        ),
        pytest.param([], [], set(), [], [], id="nothing-to-insert"),
    ],
)
def test_an_event_another_instance_stored_first_answers_duplicate(
    results: list[str],
    decided: list[str],
    inserted: set[str],
    expected_results: list[str],
    expected_stored: list[str],
) -> None:
    ids = iter(["a", "b", "c", "d"])
    outcomes = [accepted(next(ids)) if r == "accepted" else Outcome(next(ids), r) for r in results]
    settled, stored = settle_inserted(outcomes, [checkin(i) for i in decided], inserted)
    assert [o.result for o in settled] == expected_results
    assert [e.id for e in stored] == expected_stored


def test_a_lost_event_answers_exactly_as_a_resend_does() -> None:
    """The same JSON as `decide_batch` gives for an id already stored: no member shown."""
    incoming = Incoming("a", "checkin", NOW, "M1")

    def facts(stored_ids: set[str]) -> Facts:
        presence = {(7, "M1"): Presence(2, "Điểm cầu", NOW)}
        return Facts({7: SESSION}, {"M1": M1}, stored_ids, presence, {})

    outcomes, events, _ = decide_batch([(7, HALL, incoming)], facts(set()), NOW)
    assert outcomes[0].already_present is not None  # the decision had shown a presence
    settled, stored = settle_inserted(outcomes, events, set())
    answer, _, _ = decide_batch([(7, HALL, incoming)], facts({"a"}), NOW)
    assert [o.to_json() for o in settled] == [o.to_json() for o in answer]
    assert stored == []


def test_the_decided_lists_are_not_changed_in_place() -> None:
    outcomes, events = [accepted("a")], [checkin("a")]
    settle_inserted(outcomes, events, set())
    assert (outcomes[0].result, [e.id for e in events]) == ("accepted", ["a"])
