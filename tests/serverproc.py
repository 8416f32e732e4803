"""A real `streamsvc serve` process for the tests that need one (crash, browser, clients),
from the harness the benchmarks use too (`streamsvc_clients.serverproc`), and the waits
tests use instead of fixed sleeps.

It runs at a fixed port so that it can be killed (`kill -9`) and started again on the same
address, the way a coordinator's device sees a server restart.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from conftest import ADMIN
from streamsvc_clients import serverproc
from streamsvc_clients.serverproc import free_port

from streamsvc.storage import open_store

__all__ = ["ServerProcess", "eventually", "free_port", "stored_ids", "until"]


class ServerProcess(serverproc.ServerProcess):
    """The shared harness with the tests' admin token; `start()` is awaited, so the test's
    clients keep running while the server comes up again."""

    def __init__(
        self,
        database: str,
        log_path: Path,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        super().__init__(database, log_path, admin_token=ADMIN, port=port, extra_args=extra_args)

    async def start(self) -> None:  # type: ignore[override]
        """Start it and wait until /healthz answers 200."""
        await self.start_async()


async def stored_ids(database_url: str, session_id: int) -> Counter[str]:
    """Every event id the store holds for the session, with how often: the exactly-once check."""
    store = open_store(database_url)
    await store.open()
    try:
        return Counter([event.id async for event in store.iter_events(session_id)])
    finally:
        await store.close()


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for `check()` to hold, or fail saying `what` never happened."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """`until` for a check that must await (an HTTP request): polled every 0.1 s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
