"""CPU-bound work in threads of its own that still reads and writes through the event loop.

An export reconciles a whole session in one pass: too much CPU for the loop, which must stay
free for check-ins. The pass runs in a worker thread; what it reads (the store's async
streams) and where it writes (a client's response) live on the loop, so the thread reaches
them through a `LoopBridge`, a chunk at a time, and a slow client slows only its own export.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, BinaryIO, Protocol, TypeVar

__all__ = [
    "PULL",
    "AsyncOutput",
    "LoopBridge",
    "Output",
    "WorkCancelled",
    "WorkerThreads",
]

T = TypeVar("T")
R = TypeVar("R")

#: Rows pulled from an async stream per trip to the event loop.
PULL = 5000


class AsyncOutput(Protocol):
    """Where bytes go on the event loop: an aiohttp `StreamResponse` is one."""

    async def write(self, data: bytes) -> None: ...


Output = AsyncOutput | BinaryIO


class WorkCancelled(Exception):
    """Raised in the worker thread when the caller on the loop gave up on the work."""


class LoopBridge:
    """A worker thread's way back to the event loop: run a coroutine there and wait for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, pull_size: int = PULL) -> None:
        self.loop = loop
        self.pull_size = pull_size
        self._cancelled = threading.Event()
        self._pending: concurrent.futures.Future[Any] | None = None

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """From the thread: run `coro` on the loop and return its result.

        Raises WorkCancelled once `cancel` was called, including while waiting here.
        """
        if self._cancelled.is_set():
            coro.close()
            raise WorkCancelled
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        self._pending = future
        if self._cancelled.is_set():
            # `cancel` may have run between the check above and `_pending` being set (the
            # coroutine can start on the loop first): it found nothing to interrupt.
            future.cancel()
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise WorkCancelled from None
        finally:
            self._pending = None

    def cancel(self) -> None:
        """From the loop: stop the thread at its next call, and interrupt the one it waits on."""
        self._cancelled.set()
        pending = self._pending
        if pending is not None:
            pending.cancel()

    def pull(self, stream: AsyncIterator[T]) -> Iterator[T]:
        """A plain iterator over an async stream, `pull_size` rows per trip to the loop."""
        size = self.pull_size
        while True:
            rows = self.call(_take(stream, size))
            yield from rows
            if len(rows) < size:
                return

    def writer(self, out: Output) -> Callable[[bytes], object]:
        """`write(bytes)` for the thread: straight to a file, or through the loop."""
        write = out.write
        if inspect.iscoroutinefunction(write):
            return lambda data: self.call(write(data))
        return write


async def _take(stream: AsyncIterator[T], size: int) -> list[T]:
    rows: list[T] = []
    append = rows.append
    with contextlib.suppress(StopAsyncIteration):
        for _ in range(size):
            append(await anext(stream))
    return rows


class WorkerThreads:
    """A few threads of their own for work that waits on the loop, one job per thread at a time.

    Not the loop's default pool: these threads wait on the loop, which must never wait for a
    default-pool thread that a job holds (SQLite reads use that pool). Jobs beyond `workers`
    wait their turn on the loop, not in the pool's queue, so a cancelled one never starts.
    """

    def __init__(self, workers: int, *, name: str) -> None:
        self.workers = workers
        self.name = name
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None

    async def run(self, job: Callable[[LoopBridge], R]) -> R:
        """Run `job(bridge)` in a worker thread and return what it returns.

        When the caller is cancelled, the job's bridge is cancelled and the job is let unwind
        before the cancellation goes on: whatever it reads through the loop (a store's cursor)
        may be closed as soon as this returns.
        """
        if self._executor is None or self._slots is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self.workers, thread_name_prefix=self.name
            )
            self._slots = asyncio.Semaphore(self.workers)
        executor = self._executor
        loop = asyncio.get_running_loop()
        bridge = LoopBridge(loop)
        async with self._slots:
            future = loop.run_in_executor(executor, job, bridge)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                bridge.cancel()
                await asyncio.wait([future])
                if not future.cancelled():
                    future.exception()  # retrieved, so it is not logged as lost
                raise

    async def close(self) -> None:
        """Let the threads go once their jobs end; jobs not yet started never start."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
