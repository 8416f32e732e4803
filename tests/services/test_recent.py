"""`Recent`: one read serves the devices that connect together; failures are not kept."""

from __future__ import annotations

import asyncio

import pytest

from streamsvc.services.recent import Recent


async def test_concurrent_callers_share_one_read_until_it_is_forgotten():
    reads: list[int] = []
    reading, gate = asyncio.Event(), asyncio.Event()

    async def read(key: int) -> str:
        reads.append(key)
        reading.set()
        await gate.wait()
        return f"session {key}"

    recent: Recent[int, str] = Recent(read, max_age=60)
    waiting = [asyncio.ensure_future(recent.get(1)) for _ in range(50)]
    await asyncio.wait_for(reading.wait(), timeout=5)  # every caller arrived while it reads
    gate.set()
    assert await asyncio.gather(*waiting) == ["session 1"] * 50
    assert await recent.get(1) == "session 1"
    assert reads == [1]
    recent.forget(1)
    assert await recent.get(1) == "session 1"
    assert reads == [1, 1]


async def test_an_old_answer_is_read_again():
    reads: list[int] = []

    async def read(key: int) -> int:
        reads.append(key)
        return len(reads)

    recent: Recent[int, int] = Recent(read, max_age=0)
    assert (await recent.get(7), await recent.get(7)) == (1, 2)


async def test_a_failed_read_is_not_kept():
    calls = 0

    async def read(key: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database restarting")
        return key

    recent: Recent[int, int] = Recent(read, max_age=60)
    with pytest.raises(ConnectionError):
        await recent.get(3)
    assert await recent.get(3) == 3
