"""`AckLine`: a connection's frames waiting for their acks come out in the order they came
in; the reader waits once `limit` frames wait (so a device that does not read its acks is
not read from either), and the sender waits while there is nothing to ack."""

from __future__ import annotations

import asyncio

from streamsvc.web.ws_checkin import AckLine


async def test_frames_come_out_in_order_and_a_full_line_holds_the_reader_back():
    line: AckLine[int] = AckLine(3)
    for i in range(3):
        await line.put(i)
    fourth = asyncio.create_task(line.put(3))
    await asyncio.sleep(0.01)
    assert not fourth.done() and len(line) == 3  # full: the reader waits
    assert await line.get() == 0
    await asyncio.wait_for(fourth, 1)  # room again: it goes on
    assert [await line.get() for _ in range(3)] == [1, 2, 3]


async def test_the_sender_waits_for_the_next_frame():
    line: AckLine[str] = AckLine(2)
    getting = asyncio.create_task(line.get())
    await asyncio.sleep(0.01)
    assert not getting.done()
    await line.put("frame")
    assert await asyncio.wait_for(getting, 1) == "frame"


async def test_a_cancelled_wait_leaves_the_line_usable():
    line: AckLine[int] = AckLine(1)
    getting = asyncio.create_task(line.get())
    await asyncio.sleep(0.01)
    getting.cancel()
    await asyncio.gather(getting, return_exceptions=True)
    await line.put(7)
    assert await line.get() == 7
