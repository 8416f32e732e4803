"""Connection counts across instances: what makes a site show as connected, or stop to."""

from __future__ import annotations

import pytest

from streamsvc.domain.connections import CONN_EXPIRY, ConnectionRegistry

SITE, OTHER_SITE, SESSION = 7, 8, 3


def test_local_connections_count_up_and_down_and_never_below_zero():
    reg = ConnectionRegistry()
    assert reg.connect(SITE, SESSION, +1) == 1
    assert reg.connect(SITE, SESSION, +1) == 2
    assert reg.total(SITE) == 2
    assert reg.connect(SITE, SESSION, -1) == 1
    assert reg.connect(SITE, SESSION, -1) == 0
    assert reg.connect(SITE, SESSION, -1) == 0  # a late disconnect after a restart
    assert reg.total(SITE) == 0
    assert reg.local_counts() == []
    assert reg.session_of(SITE) == SESSION


def test_the_heartbeat_carries_every_local_count_with_its_session():
    reg = ConnectionRegistry()
    reg.connect(SITE, SESSION, +1)
    reg.connect(SITE, SESSION, +1)
    reg.connect(OTHER_SITE, 4, +1)
    assert sorted(reg.local_counts()) == [(SITE, SESSION, 2), (OTHER_SITE, 4, 1)]


def test_the_total_adds_every_instance_still_heard_from():
    reg = ConnectionRegistry()
    reg.connect(SITE, SESSION, +1)
    assert reg.heard("b", [(SITE, SESSION, 2)], full=False, now=0.0) == {SITE}
    assert reg.heard("c", [(SITE, SESSION, 1), (OTHER_SITE, SESSION, 1)], full=False, now=0.0)
    assert (reg.total(SITE), reg.total(OTHER_SITE)) == (4, 1)
    assert reg.heard("b", [(SITE, SESSION, 0)], full=False, now=1.0) == {SITE}
    assert reg.total(SITE) == 2


def test_a_heartbeat_replaces_what_was_heard_from_its_instance():
    """A change message lost on the way heals with the next heartbeat: sites it leaves out
    have no connection there, and they are reported as changed."""
    reg = ConnectionRegistry()
    reg.heard("b", [(SITE, SESSION, 1), (OTHER_SITE, SESSION, 3)], full=False, now=0.0)
    changed = reg.heard("b", [(OTHER_SITE, SESSION, 1)], full=True, now=5.0)
    assert changed == {SITE, OTHER_SITE}
    assert (reg.total(SITE), reg.total(OTHER_SITE)) == (0, 1)


def test_counts_heard_place_sites_not_yet_known_in_their_session():
    reg = ConnectionRegistry()
    reg.heard("b", [(SITE, SESSION, 1)], full=False, now=0.0)
    assert reg.session_of(SITE) == SESSION
    reg.place(OTHER_SITE, 9)
    reg.heard("b", [(OTHER_SITE, 4, 1)], full=False, now=0.0)
    assert reg.session_of(OTHER_SITE) == 9  # what this instance read itself wins


@pytest.mark.parametrize(
    ("last_heard", "now", "expired"),
    [
        (0.0, CONN_EXPIRY, False),
        (0.0, CONN_EXPIRY + 0.1, True),
        (10.0, CONN_EXPIRY + 5.0, False),  # each message, not only heartbeats, keeps it alive
    ],
)
def test_an_instance_not_heard_from_for_the_expiry_stops_counting(last_heard, now, expired):
    reg = ConnectionRegistry()
    reg.connect(SITE, SESSION, +1)
    reg.heard("b", [(SITE, SESSION, 2)], full=False, now=0.0)
    if last_heard:
        reg.heard("b", [(OTHER_SITE, SESSION, 1)], full=False, now=last_heard)
    changed = reg.expire(now)
    assert (SITE in changed) is expired
    assert reg.total(SITE) == (1 if expired else 3)
    assert reg.expire(now) == set()  # forgotten once
