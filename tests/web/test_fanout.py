"""The live fan-out on its own: one framing per delta for all monitors, a turn of the loop
between slices, and a monitor that falls behind skipping to a fresh snapshot."""

from __future__ import annotations

import asyncio

import pytest

from streamsvc.web.fanout import FANOUT_SLICE, MONITOR_QUEUE, Monitor, deliver
from streamsvc.web.wsframes import Outgoing


def keeping_up(written: list[bytes], window_bits: int = 0) -> Monitor:
    monitor = Monitor(lambda delta: written.append(delta.frame(window_bits)) is None)
    monitor.sending = False  # its first snapshot is out
    return monitor


@pytest.mark.parametrize("window_bits", [0, 15])
async def test_a_delta_is_framed_once_for_every_monitor(window_bits):
    written: list[bytes] = []
    monitors = {keeping_up(written, window_bits) for _ in range(2 * FANOUT_SLICE + 3)}
    await deliver(monitors, b'{"type":"delta","seq":1,"present":2}')
    assert len(written) == len(monitors)
    assert all(frame is written[0] for frame in written)  # the same bytes, not equal copies


async def test_the_fan_out_lets_the_loop_turn_between_slices():
    written: list[bytes] = []
    monitors = {keeping_up(written) for _ in range(3 * FANOUT_SLICE)}
    seen_at: list[int] = []

    async def meanwhile() -> None:
        seen_at.append(len(written))

    other = asyncio.create_task(meanwhile())
    await deliver(monitors, b"{}")
    await other
    assert seen_at == [FANOUT_SLICE]


async def test_a_monitor_sends_its_snapshot_first_and_deltas_queue_behind_it():
    sent: list[bytes] = []
    release = asyncio.Event()

    async def send(data: bytes) -> None:
        await release.wait()
        sent.append(data)

    fast: list[Outgoing] = []
    monitor = Monitor(lambda delta: fast.append(delta) is None)
    task = asyncio.create_task(monitor.run(b"snapshot", send, lambda: b"fresh"))
    monitor.offer(b"delta 1", Outgoing(b"delta 1"))  # the snapshot is not out yet
    release.set()
    for _ in range(100):
        if len(sent) == 2:
            break
        await asyncio.sleep(0)
    assert sent == [b"snapshot", b"delta 1"] and fast == []
    monitor.offer(b"delta 2", Outgoing(b"delta 2"))  # keeping up now: the fast path
    assert [d.data for d in fast] == [b"delta 2"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_monitor_that_falls_behind_gets_one_fresh_snapshot_instead():
    sent: list[bytes] = []
    monitor = Monitor(lambda delta: False)  # its socket is full
    for seq in range(MONITOR_QUEUE + 3):
        data = b"delta %d" % seq
        monitor.offer(data, Outgoing(data))
    assert monitor.skipped == 1 and monitor.snapshot_pending and monitor.queue.qsize() == 1

    async def send(data: bytes) -> None:
        sent.append(data)

    task = asyncio.create_task(monitor.run(b"first", send, lambda: b"fresh"))
    for _ in range(100):
        if len(sent) == 2:
            break
        await asyncio.sleep(0)
    assert sent == [b"first", b"fresh"] and not monitor.snapshot_pending
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
