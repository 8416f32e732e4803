"""Slow peers against a real server process: a monitor that never reads, and a coordinator on
a very slow link. Neither may hold up anyone else, and each gets what it is owed once it reads.

Both slow peers connect through a socket with a small receive buffer and segments of a real
link's size, and a `websockets` client that stops reading its socket after one message
(`max_queue=1`), so the service's writes back up the way they do over a congested mobile link.
The assertions are about behaviour (who got what, in which order, what was held back), not
wall-clock speed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from conftest import ADMIN
from serverproc import ServerProcess, stored_ids, until
from streamsvc_clients.load import LoadConfig, Prepared, Simulation, prepare
from streamsvc_clients.protocol import ws_url
from websockets.asyncio.client import ClientConnection, connect

pytestmark = pytest.mark.slow

SMALL_BUFFER = 4096  # bytes; the kernel doubles it
SEGMENT = 1400  # bytes, as over Ethernet or a mobile link


@pytest.fixture
async def sqlite_server(tmp_path) -> Any:
    server = ServerProcess(f"sqlite:///{tmp_path / 'streamsvc.db'}", tmp_path / "server.log")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def _slow_connection(url: str) -> ClientConnection:
    """A websocket over a socket with a small receive buffer, read only when asked."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    # segments of a real network's size, not loopback's 64 KiB: the server's kernel then
    # sizes its send buffer for this peer as it would for a phone, not at megabytes
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SEGMENT)
    sock.setblocking(False)
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await connect(
        url, sock=sock, compression=None, max_queue=1, ping_interval=None, max_size=None
    )


class Watcher:
    """Everything a monitor received, checked as it comes: each delta follows the message
    before it (seq + 1), a snapshot may jump ahead; `present` is the latest count."""

    def __init__(self) -> None:
        self.snapshots = 0
        self.deltas = 0
        self.seq: int | None = None
        self.present: int | None = None
        self.gaps: list[tuple[int | None, int]] = []

    def take(self, raw: str | bytes) -> None:
        message = orjson.loads(raw)
        if message["type"] == "snapshot":
            self.snapshots += 1
            self.present = message["live"]["present"]
        elif message["type"] == "delta":
            self.deltas += 1
            if self.seq is None or message["seq"] != self.seq + 1:
                self.gaps.append((self.seq, message["seq"]))
            self.present = message.get("present", self.present)
        else:
            raise AssertionError(f"unexpected message {message}")
        self.seq = message["seq"]

    async def read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self.take(raw)


async def _watch(ws: ClientConnection, session_id: int) -> None:
    await ws.send(orjson.dumps({"type": "hello", "token": ADMIN, "session": session_id}), text=True)


async def test_a_monitor_that_never_reads_is_skipped_and_holds_up_no_one(sqlite_server) -> None:
    server = sqlite_server
    cfg = LoadConfig(
        url=server.url, admin_token=ADMIN, sites=600, members=6000, units=20, events=100_000,
        batch=5, window=4, rate=12_500, timeout=120,
    )  # fmt: skip
    prepared = await prepare(cfg)
    monitor_url = ws_url(server.url, "/ws/monitor")

    healthy = Watcher()
    healthy_ws = await connect(monitor_url, compression=None, ping_interval=None, proxy=None)
    await _watch(healthy_ws, prepared.session_id)
    healthy_reader = asyncio.create_task(healthy.read(healthy_ws))

    stuck = Watcher()
    stuck_ws = await _slow_connection(monitor_url)
    await _watch(stuck_ws, prepared.session_id)  # and then it reads nothing until the end
    try:
        await until(lambda: healthy.snapshots == 1, 10, "the healthy monitor's snapshot")
        stats = await Simulation(cfg, prepared).run()
        assert stats.acked == cfg.events and not stats.errors, stats.errors
        assert stats.rejected == 0, stats.reasons
        members = len(prepared.members)
        await until(lambda: healthy.present == members, 10, "the healthy monitor's final count")
        assert healthy.snapshots == 1 and healthy.gaps == [] and healthy.deltas > 0

        stuck_reader = asyncio.create_task(stuck.read(stuck_ws))
        await until(
            lambda: stuck.seq == healthy.seq and stuck.present == members,
            30,
            "the stuck monitor catching up",
        )
        # it was skipped to a fresh snapshot at least once, and never shown a gap
        assert stuck.snapshots >= 2
        assert stuck.gaps == []
        stuck_reader.cancel()
    finally:
        healthy_reader.cancel()
        await healthy_ws.close()
        await stuck_ws.close()


def _frames(members: Sequence[str], frames: int, per_frame: int, ts: str) -> list[list[dict]]:
    """`frames` batches of `per_frame` check-ins, the members taken in turn."""
    codes = iter(members[i % len(members)] for i in range(frames * per_frame))
    return [
        [
            {"type": "checkin", "id": str(uuid.uuid4()), "member": next(codes), "ts": ts}
            for _ in range(per_frame)
        ]
        for _ in range(frames)
    ]


async def test_a_coordinator_on_a_slow_link_gets_its_acks_in_order_and_slows_no_one(
    sqlite_server,
) -> None:
    server = sqlite_server
    base = LoadConfig(
        url=server.url, admin_token=ADMIN, sites=11, members=2000, units=2, events=5000,
        batch=10, window=4, record_ids=True, timeout=60,
    )  # fmt: skip
    prepared = await prepare(base)
    others = Prepared(prepared.session_id, prepared.tokens[:10], prepared.members)
    sim = Simulation(dataclasses.replace(base, sites=10), others)

    slow = await _slow_connection(ws_url(server.url))
    hello = {"type": "hello", "token": prepared.tokens[10], "client": "slow-link"}
    await slow.send(orjson.dumps(hello), text=True)
    welcome = orjson.loads(await slow.recv())
    assert welcome["type"] == "welcome"
    frames = _frames(prepared.members, 200, 200, welcome["server_time"])

    async def send_all() -> None:
        for events in frames:
            await slow.send(orjson.dumps({"type": "batch", "items": events}), text=True)

    sender = asyncio.create_task(send_all())
    try:
        stats = await sim.run()
        # everyone else got every ack while the slow link's acks waited, unread
        assert sim.unacked == 0 and not stats.errors, stats.errors
        assert stats.rejected == 0, stats.reasons
        # and the service stopped taking the slow link's frames once its acks backed up
        slow_ids = {e["id"] for events in frames for e in events}
        stored_meanwhile = await stored_ids(server.database, prepared.session_id)
        assert len(slow_ids & set(stored_meanwhile)) < len(slow_ids) // 2

        for events in frames:  # now it reads: every ack, in the order of its frames
            ack = orjson.loads(await asyncio.wait_for(slow.recv(), 30))
            assert ack["type"] == "ack"
            assert [r["id"] for r in ack["results"]] == [e["id"] for e in events]
            assert {r["result"] for r in ack["results"]} == {"accepted"}
        await asyncio.wait_for(sender, 10)
    finally:
        sender.cancel()
        await slow.close()
        server.stop()

    stored = await stored_ids(server.database, prepared.session_id)
    sent = slow_ids | set(sim.event_ids())
    assert set(stored) == sent
    assert max(stored.values()) == 1
