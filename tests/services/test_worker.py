"""`WorkerThreads` and `LoopBridge`: a thread that reads and writes through the event loop."""

from __future__ import annotations

import asyncio
import inspect
import io
import threading
from collections.abc import AsyncIterator

import pytest

from streamsvc.services.worker import LoopBridge, WorkCancelled, WorkerThreads


@pytest.fixture
async def threads() -> AsyncIterator[WorkerThreads]:
    pool = WorkerThreads(1, name="test-worker")
    yield pool
    await pool.close()


async def test_cancelling_the_caller_interrupts_the_call_the_thread_waits_on(threads):
    started = asyncio.Event()
    interrupted = asyncio.Event()
    seen_in_thread: list[str] = []

    async def never_done() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a client that never reads
        except asyncio.CancelledError:
            interrupted.set()
            raise

    def job(bridge: LoopBridge) -> None:
        try:
            bridge.call(never_done())
        except WorkCancelled:
            seen_in_thread.append("cancelled")
            raise

    task = asyncio.create_task(threads.run(job))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The thread unwound before `run` gave up, so the caller may close what it read from.
    assert seen_in_thread == ["cancelled"]
    await asyncio.wait_for(interrupted.wait(), timeout=5)
    assert await threads.run(lambda bridge: "free again") == "free again"


async def test_a_cancelled_bridge_refuses_the_next_call_without_running_it():
    bridge = LoopBridge(asyncio.get_running_loop())
    ran: list[int] = []

    async def step() -> None:
        ran.append(1)

    bridge.cancel()
    coro = step()
    with pytest.raises(WorkCancelled):
        bridge.call(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    assert ran == []


def fail_in_the_thread(bridge: LoopBridge) -> None:
    raise ValueError("bad row")


async def fail_on_the_loop() -> None:
    raise ValueError("bad row")


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(fail_in_the_thread, id="raised-in-the-thread"),
        pytest.param(lambda bridge: bridge.call(fail_on_the_loop()), id="raised-on-the-loop"),
    ],
)
async def test_an_error_reaches_the_caller_and_frees_the_thread(threads, job):
    with pytest.raises(ValueError, match="bad row"):
        await threads.run(job)
    assert await threads.run(lambda bridge: "free again") == "free again"


async def numbers(count: int, made: list[int]) -> AsyncIterator[int]:
    for i in range(count):
        made.append(i)
        yield i


@pytest.mark.parametrize(
    ("count", "size", "ahead"),
    [
        (10, 4, [4, 4, 4, 4, 8, 8, 8, 8, 10, 10]),
        (8, 4, [4, 4, 4, 4, 8, 8, 8, 8]),  # a last, empty trip ends it
        (3, 5, [3, 3, 3]),
        (0, 5, []),
    ],
)
async def test_a_stream_is_pulled_a_chunk_at_a_time(threads, count, size, ahead):
    """The thread sees each row when only its chunk has been read: memory stays one chunk."""
    made: list[int] = []

    def job(bridge: LoopBridge) -> list[tuple[int, int]]:
        bridge.pull_size = size
        return [(row, len(made)) for row in bridge.pull(numbers(count, made))]

    seen = await threads.run(job)
    assert [row for row, _ in seen] == list(range(count))
    assert [read for _, read in seen] == ahead


async def test_writes_go_through_the_loop_to_an_async_output_and_straight_to_a_file(threads):
    loop_thread = threading.get_ident()

    class AsyncOut:
        def __init__(self) -> None:
            self.parts: list[bytes] = []
            self.on_loop: set[bool] = set()

        async def write(self, data: bytes) -> None:
            self.on_loop.add(threading.get_ident() == loop_thread)
            self.parts.append(data)

    to_loop, to_file = AsyncOut(), io.BytesIO()

    def job(bridge: LoopBridge) -> None:
        for write in (bridge.writer(to_loop), bridge.writer(to_file)):
            write(b"ab")
            write(b"cd")

    await threads.run(job)
    assert (to_loop.parts, to_loop.on_loop) == ([b"ab", b"cd"], {True})
    assert to_file.getvalue() == b"abcd"
