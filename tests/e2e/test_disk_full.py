"""SQLite's disk fills up under a running service: no ack for an event not stored, a clear
close for the coordinator, its events kept in its outbox, and check-ins again once space is
freed, each event stored exactly once.

The database lives on a small tmpfs of its own (mounting needs root: skipped outside CI
without it, failed under CI=true); the coordinator is the terminal client's core,
`CheckinClient`, with its on-disk outbox elsewhere.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from builders import MEMBERS, UNITS, checkin, iso, now
from conftest import ADMIN
from serverproc import ServerProcess, stored_ids, until
from streamsvc_clients.checkin import CheckinClient
from streamsvc_clients.outbox import Outbox

pytestmark = pytest.mark.slow

DISK_SIZE = "16m"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of `DISK_SIZE` mounted for this test alone."""
    if os.geteuid() != 0:
        _skip_or_fail("a filesystem of its own needs root (mount -t tmpfs)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        _skip_or_fail(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(path: Path) -> None:
    """Write zeros to `path` until the filesystem has no byte left."""
    chunk = bytes(64 * 1024)
    with path.open("wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        while chunk:  # the last few blocks
            chunk = chunk[: len(chunk) // 2]
            try:
                f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise


async def _session_with_site(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(headers=AUTH) as http:

        async def post(path: str, body: dict) -> dict:
            async with http.post(url + path, json=body) as resp:
                assert resp.status in (200, 201), await resp.text()
                return await resp.json()

        await post("/api/v1/units", {"units": UNITS})
        await post("/api/v1/members", {"members": MEMBERS})
        session = await post(
            "/api/v1/sessions",
            {
                "title": "disk full",
                "starts_at": iso(now()),
                "ends_at": iso(datetime(2100, 1, 1, tzinfo=UTC)),
                "audience": ["TU"],
            },
        )
        site = await post(
            f"/api/v1/sessions/{session['id']}/sites", {"name": "hall", "kind": "hall"}
        )
    return session["id"], site["token"]


async def test_a_full_disk_acks_nothing_unstored_and_check_ins_resume_once_freed(
    small_disk: Path, tmp_path: Path
) -> None:
    database = f"sqlite:///{small_disk / 'streamsvc.db'}"
    server = ServerProcess(database, tmp_path / "server.log")
    await server.start()
    client_task = None
    try:
        session_id, token = await _session_with_site(server.url)
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        notices: list[str] = []
        acked: dict[str, str] = {}
        client = CheckinClient(
            server.url,
            token,
            outbox,
            on_result=lambda event, result: acked.__setitem__(event["id"], result["result"]),
            on_notice=notices.append,
            backoff_initial=0.05,
            backoff_max=0.5,
            window=1,
        )
        client_task = asyncio.create_task(client.run())
        added: list[str] = []

        def add(count: int) -> None:
            events = [checkin(MEMBERS[len(added) % len(MEMBERS)]["code"]) for _ in range(count)]
            outbox.add_many(events)
            added.extend(e["id"] for e in events)
            client.notify()

        add(20)
        await until(lambda: len(acked) == 20, 20, "the first check-ins acked")

        _fill(small_disk / "filler")
        # whatever room SQLite's files still had is used up by a few more commits
        for _ in range(400):
            add(1)
            await until(
                lambda: bool(notices) or len(acked) == len(added), 10, "an ack or a refusal"
            )
            if notices:
                break
        assert notices, "the disk never filled up"
        assert "disk is full" in notices[0], notices
        assert outbox.counts().queued > 0  # the events not stored stay on the device
        # stored while the disk is full: exactly what was acked, nothing refused
        assert set(await stored_ids(database, session_id)) == set(acked)
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/healthz") as resp:
            assert resp.status == 200  # reads go on; only writes wait for room

        add(5)  # scanned while the disk is full
        (small_disk / "filler").unlink()
        await until(lambda: outbox.counts().queued == 0, 30, "the queue sent once space is freed")
        assert len(acked) == len(added)
        assert set(acked.values()) == {"accepted"}
        client.finish()
        await asyncio.wait_for(client_task, 10)
        outbox.close()
    finally:
        if client_task is not None and not client_task.done():
            client_task.cancel()
        server.stop()

    stored = await stored_ids(database, session_id)
    assert set(stored) == set(added)
    assert max(stored.values()) == 1
