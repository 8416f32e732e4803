"""`kill -9` in the middle of a burst from many sites: no acked check-in is lost or doubled.

Fifty simulated sites (half sending batches, half one event per frame, all pipelined) check
members in over real websockets; the server process is killed with SIGKILL while commits are
in flight and started again on the same database and port. The sites reconnect with backoff
and resend whatever was not acked. Afterwards every event id ever sent, resent once more,
must answer `duplicate` (so it is stored), and the store must hold each id exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import aiohttp
import pytest
from serverproc import ServerProcess, stored_ids, until
from streamsvc_clients.load import LoadConfig, Prepared, Simulation, prepare

pytestmark = pytest.mark.slow

SITES = 50
MEMBERS = 3000
EVENTS_PER_GROUP = 3000
RATE_PER_GROUP = 1500.0  # events/s; the burst lasts about two seconds per group


async def _resend(url: str, session_id: int, token: str, ids: list[str]) -> Counter[str]:
    """Send every id once more over HTTP (as a check-in); count the results."""
    answers: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    ts = "2000-01-01T00:00:00Z"  # rejected as out of window if the id were new: never stored
    async with aiohttp.ClientSession() as http:
        for start in range(0, len(ids), 1000):
            items = [
                {"type": "checkin", "id": i, "member": "LOAD-M0000000", "ts": ts}
                for i in ids[start : start + 1000]
            ]
            async with http.post(
                f"{url}/api/v1/sessions/{session_id}/checkins",
                json={"items": items},
                headers=headers,
            ) as resp:
                assert resp.status == 200, await resp.text()
                body = await resp.json()
            assert [r["id"] for r in body["results"]] == [item["id"] for item in items]
            answers.update(r["result"] for r in body["results"])
    return answers


async def test_kill_9_mid_burst_loses_and_doubles_nothing(
    server: ServerProcess, database_url: str
) -> None:
    base = LoadConfig(
        url=server.url,
        admin_token=server.admin_token,
        sites=SITES,
        members=MEMBERS,
        units=5,
        window=4,
        rate=RATE_PER_GROUP,
        record_ids=True,
        backoff_initial=0.05,
        backoff_max=0.5,
        timeout=60,
    )
    prepared = await prepare(base)
    half, members_half = SITES // 2, MEMBERS // 2

    def group(lo: int, hi: int, m_lo: int, m_hi: int, batch: int) -> Simulation:
        cfg = dataclasses.replace(base, sites=hi - lo, events=EVENTS_PER_GROUP, batch=batch)
        part = Prepared(prepared.session_id, prepared.tokens[lo:hi], prepared.members[m_lo:m_hi])
        return Simulation(cfg, part)

    sims = [group(0, half, 0, members_half, 20), group(half, SITES, members_half, MEMBERS, 0)]
    sent = [i for sim in sims for i in sim.event_ids()]
    assert len(set(sent)) == len(sent) == 2 * EVENTS_PER_GROUP

    runs = asyncio.gather(*(sim.run() for sim in sims))

    def acked() -> int:
        return sum(sim.stats.acked for sim in sims)

    def in_flight() -> int:
        return sum(len(f.ids) for sim in sims for site in sim.sites for f in site.inflight)

    await until(
        lambda: acked() >= len(sent) // 4 and in_flight() > 0,
        30,
        "a quarter of the events acked and more in flight",
    )
    server.kill()  # no await since the check: those events are in flight at the kill
    acked_at_kill = acked()
    await until(
        lambda: (
            all(sim.stats.connected == 0 for sim in sims)
            and sum(sim.stats.connect_failures for sim in sims) > 0
        ),
        10,
        "every site cut off and retrying while the server is down",
    )
    await server.start()
    await asyncio.wait_for(runs, 60)

    for sim in sims:
        stats = sim.stats
        assert sim.unacked == 0
        assert not stats.errors, stats.errors
        assert stats.rejected == 0, stats.reasons
        assert stats.disconnects >= sim.cfg.sites  # every connection was cut
        assert stats.results is not None and stats.resent_ids is not None
        # a duplicate answer is only possible for an event sent again after a cut
        duplicates = {i for i, r in stats.results.items() if r == "duplicate"}
        assert duplicates <= stats.resent_ids
    results = {i: r for sim in sims for i, r in (sim.stats.results or {}).items()}
    assert set(results) == set(sent)
    assert acked_at_kill < len(sent), "the kill came after the burst: nothing was tested"
    assert sum(sim.stats.resent_frames for sim in sims) > 0

    answers = await _resend(server.url, prepared.session_id, prepared.tokens[0], sent)
    assert answers == Counter({"duplicate": len(sent)})

    stored = await stored_ids(database_url, prepared.session_id)
    assert set(stored) == set(sent)
    assert max(stored.values()) == 1
    assert sum(stored.values()) == len(sent)
