"""A real `streamsvc serve` process for the tests that need one (crash, browser, clients).

It runs at a fixed port so that it can be killed (`kill -9`) and started again on the same
address, the way a coordinator's device sees a server restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
from conftest import ADMIN

from streamsvc.storage import open_store

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """One `streamsvc serve` process at a fixed port, so that it can be killed and restarted."""

    def __init__(
        self,
        database: str,
        log_path: Path,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.database = database
        self.extra_args = extra_args
        self.admin_token = ADMIN
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start it and wait until /healthz answers 200."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"--- start {self.starts}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamsvc",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--database",
                self.database,
                "--admin-token",
                self.admin_token,
                "--log-level",
                "WARNING",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("STREAMSVC_")},
        )
        log.close()
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited: {self.log_path.read_text()[-2000:]}")
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"the server did not come up: {self.log_path.read_text()}")
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """`kill -9`: no shutdown handlers, no flush, connections dropped on the floor."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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
