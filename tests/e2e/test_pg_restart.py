"""PostgreSQL restarted under load: every site is back within its reconnect ceiling, and every
acked check-in is stored exactly once.

A PostgreSQL server of the test's own (initdb into a temporary directory, on a free port) backs
a real `streamsvc serve`; fifty sites check members in over websockets at a steady rate, each a
`CheckinLink` with a reconnect ceiling of `CEILING` seconds. The database is restarted with
`pg_ctl restart -m fast` (every connection cut, as an operator's restart or a failover does),
or stopped for a few seconds and started again. Once it accepts connections again, each site
must get an ack within its ceiling and a margin; afterwards every event sent is acked, and the
store holds each id exactly once.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from serverproc import ServerProcess, stored_ids, until
from steady import SteadySite, skip_or_fail
from streamsvc_clients.load import LoadConfig, prepare
from streamsvc_clients.protocol import ws_url
from streamsvc_clients.serverproc import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SITES = 50
RATE = 300.0  # check-ins/s over all sites, one per frame
PER_SITE = 200  # members each site may check in: far more than the test sends
CEILING = 2.0  # each site's reconnect backoff ceiling, seconds
MARGIN = 1.5  # reconnect, hello, welcome and the first commit on a loaded 2-core machine


@pytest.fixture
async def own_postgres():
    skip_or_fail(PostgresServer.unavailable())
    pg = PostgresServer()
    try:
        await asyncio.to_thread(pg.start)
        yield pg
    finally:
        await asyncio.to_thread(pg.remove)


# `restart`: pg_ctl restart -m fast, back within a second. `down`: stopped for longer than a
# welcome's session is reused (WELCOME_MAX_AGE), so that reconnecting devices say hello to a
# service that cannot read it: they used to wait for a welcome until their own timeout.
@pytest.mark.parametrize("down_for", [0.0, 3.0], ids=["restart", "down-3s"])
async def test_every_site_is_back_within_its_ceiling_after_postgres_was_away(
    own_postgres: PostgresServer, tmp_path, down_for: float
) -> None:
    database = await asyncio.to_thread(own_postgres.create_database, "streamsvc")
    server = ServerProcess(database, tmp_path / "server.log")
    await server.start()
    try:
        cfg = LoadConfig(
            url=server.url, admin_token=server.admin_token, sites=SITES, members=SITES * PER_SITE
        )
        prepared = await prepare(cfg)
        sites = [
            SteadySite(
                ws_url(server.url),
                token,
                prepared.members[i * PER_SITE : (i + 1) * PER_SITE],
                interval=SITES / RATE,
                ceiling=CEILING,
            )
            for i, token in enumerate(prepared.tokens)
        ]
        runs = [asyncio.create_task(site.run()) for site in sites]
        try:
            await until(lambda: all(len(s.acks) >= 3 for s in sites), 30, "every site acked")
            if down_for:
                await asyncio.to_thread(own_postgres.stop)
                await asyncio.sleep(down_for)
                await asyncio.to_thread(own_postgres.start)
            else:
                await asyncio.to_thread(own_postgres.restart)
            up = time.perf_counter()
            await until(
                lambda: all(s.back_after(up) is not None for s in sites),
                120,
                "every site acked after the restart",
            )
            back = sorted((s.back_after(up) or 0.0, i) for i, s in enumerate(sites))
            for site in sites:
                site.wind_down()
            await asyncio.wait_for(asyncio.gather(*runs), 60)
        finally:
            for site in sites:
                site.stop()
            await asyncio.gather(*runs, return_exceptions=True)

        late = [(round(seconds, 2), i) for seconds, i in back if seconds > CEILING + MARGIN]
        assert not late, f"sites back later than {CEILING + MARGIN} s: {late} (all: {back})"
        assert sum(len(s.welcomes) >= 2 for s in sites) > 0, "the restart cut no connection"

        sent = [event_id for s in sites for event_id in s.sent]
        results = {event_id: r for s in sites for event_id, r in s.results.items()}
        assert set(results) == set(sent), "an event sent was never acked"
        assert set(results.values()) <= {"accepted", "duplicate"}
        stored = await stored_ids(database, prepared.session_id)
        assert set(stored) == set(sent)
        assert max(stored.values()) == 1
    finally:
        server.stop()
