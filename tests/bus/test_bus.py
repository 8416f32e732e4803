"""The bus port, one suite over both real transports (in-process and Redis): what one
instance publishes reaches another exactly as it was sent, and a bus that cannot reach Redis
says so without stopping anyone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from conftest import REDIS_URL

from streamsvc.bus import MemoryBus
from streamsvc.bus.codec import EventsCommitted, decode, encode
from streamsvc.bus.redis import RedisBus
from streamsvc.errors import StoreUnavailable
from streamsvc.ports import Bus


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def two_buses(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two instances' buses, connected to each other."""
    if request.param == "memory":
        shared = MemoryBus()
        pair: tuple[Bus, Bus] = (shared, shared)
    else:
        prefix = request.getfixturevalue("redis_prefix")
        pair = (RedisBus(REDIS_URL, prefix=prefix), RedisBus(REDIS_URL, prefix=prefix))
    yield pair
    for bus in pair:
        await bus.stop()


async def test_what_one_instance_publishes_reaches_the_other_as_sent(two_buses):
    a, b = two_buses
    heard: asyncio.Queue[bytes] = asyncio.Queue()

    async def ignore(_data: bytes) -> None:
        return None

    await a.start(ignore)
    await b.start(heard.put)
    assert a.shared and b.shared
    messages = [encode(EventsCommitted("a", [])), b"\x00 any bytes \xff", b"{}"]
    for message in messages:
        await a.publish(message)
    got = [await asyncio.wait_for(heard.get(), 5) for _ in messages]
    assert got == messages
    assert decode(got[0]) == EventsCommitted("a", [])


async def test_one_instance_alone_on_the_memory_bus_does_not_share():
    bus = MemoryBus()

    async def ignore(_data: bytes) -> None:
        return None

    await bus.start(ignore)
    assert not bus.shared and await bus_health(bus) == "disabled"


async def bus_health(bus: Bus) -> str:
    await bus.ping()
    return bus.health()


async def test_a_redis_bus_out_of_reach_fails_fast_and_says_why():
    bus = RedisBus("redis://127.0.0.1:1/0", prefix="streamsvc-test-unreachable")

    async def ignore(_data: bytes) -> None:
        return None

    await bus.start(ignore)  # starts anyway: check-ins must not wait for Redis
    try:
        with pytest.raises(StoreUnavailable):
            await bus.publish(b"{}")
        assert bus.health().startswith("failing")
    finally:
        await bus.stop()
