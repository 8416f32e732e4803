"""Admission of coordinator connections (`services.admission`): a reconnecting crowd is let
in at the instance's rate and told how long to wait, spread so that it does not come back in
step; nobody comes in while the group commits are behind. Pure: clock and randomness given."""

from __future__ import annotations

import pytest

from streamsvc.services.admission import MAX_RETRY_AFTER, Admission


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(rate: float = 10, burst: int = 5, backlog: int = 0, **kw) -> tuple[Admission, Clock]:
    clock = Clock()
    state = {"backlog": backlog}
    admission = Admission(
        rate, burst, backlog=lambda: state["backlog"], clock=clock, uniform=kw.get("uniform", max)
    )
    admission.state = state  # type: ignore[attr-defined]
    return admission, clock


def test_a_burst_comes_in_at_once_then_the_rest_is_told_to_wait():
    admission, _ = gate(rate=10, burst=5)
    answers = [admission.admit() for _ in range(8)]
    assert answers[:5] == [None] * 5
    assert all(isinstance(wait, int) and wait >= 1 for wait in answers[5:])
    assert (admission.admitted, admission.refused) == (5, 3)


def test_the_rate_refills_with_time_and_never_beyond_the_burst():
    admission, clock = gate(rate=10, burst=5)
    for _ in range(5):
        assert admission.admit() is None
    assert admission.admit() is not None
    clock.now += 0.25  # 2.5 connections' worth
    answers = [admission.admit() for _ in range(3)]
    assert answers[:2] == [None, None] and answers[2] is not None
    clock.now += 3600  # an idle hour fills the bucket to the burst, no more
    assert [admission.admit() is None for _ in range(6)] == [True] * 5 + [False]


def test_nobody_comes_in_while_the_commits_are_behind_whatever_the_rate():
    admission, _ = gate(rate=1000, burst=1000, backlog=2001)
    assert admission.admit() is not None
    admission.state["backlog"] = 2000  # at the limit: in
    assert admission.admit() is None


def test_the_wait_grows_with_the_crowd_refused_and_stays_within_bounds():
    # uniform=max: the longest wait the spread allows
    small, _ = gate(rate=100, burst=1)
    small.admit()
    assert small.admit() == 1  # a few refused: come back in a second
    crowd, _ = gate(rate=100, burst=1)
    crowd.admit()
    waits = [crowd.admit() for _ in range(1000)]
    assert waits[-1] == 10  # 1,000 refused at 100 a second: spread over 10 s
    assert waits == sorted(waits)
    huge, _ = gate(rate=10, burst=1)
    huge.admit()
    assert max(huge.admit() or 0 for _ in range(5000)) == MAX_RETRY_AFTER


def test_the_spread_decays_once_the_crowd_has_gone():
    admission, clock = gate(rate=100, burst=1)
    admission.admit()
    for _ in range(1000):
        admission.admit()
    clock.now += 20  # half-life of a second: the old crowd is forgotten
    assert admission.admit() is None
    assert admission.admit() == 1


def test_a_rate_below_one_connection_is_refused_as_a_setting():
    with pytest.raises(ValueError):
        Admission(0, 10)
    with pytest.raises(ValueError):
        Admission(10, 0)
