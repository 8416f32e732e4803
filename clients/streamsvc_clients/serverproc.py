"""A real `streamsvc serve` process for the benchmarks and the tests, written once.

`ServerProcess` starts the service on a port of its own (a free one unless given), waits for
`/healthz`, and stops it gracefully, kills it with `kill -9` or starts it again on the same
port, the way a coordinator's device sees a server restart. The process readers (`cpu_seconds`,
`status_kb`) take figures from `/proc` while it runs. It lives in the installed clients package
so that the `bench/` scripts, run as files, and the tests import the same code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

__all__ = [
    "ServerError",
    "ServerProcess",
    "cpu_seconds",
    "free_port",
    "main_thread_cpu_seconds",
    "status_kb",
]

START_TIMEOUT = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class ServerError(RuntimeError):
    """The server exited or did not come up; the message ends with its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_of(stat: Path) -> float:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (all its threads); 0 once it is gone."""
    return _cpu_of(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU seconds of the process's main thread: the server's event loop (the SQLite store
    writes from threads of its own)."""
    return _cpu_of(Path(f"/proc/{pid}/task/{pid}/stat"))


def status_kb(pid: int | str, key: str) -> int:
    """A kB figure of `/proc/PID/status` (`VmRSS`, `VmHWM`); `pid` may be "self"."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class ServerProcess:
    """One `streamsvc serve` process at a fixed port, so that it can be killed and restarted.

    `env` adds variables to the parent's (whose `STREAMSVC_*` are dropped, so the command line
    alone configures the server); `cpuset` pins the process to those cores.
    """

    def __init__(
        self,
        database: str,
        log_path: Path,
        *,
        admin_token: str,
        port: int | None = None,
        redis: str | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cpuset: set[int] | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.database, self.log_path = database, log_path
        self.admin_token = admin_token
        self.port = port or free_port()
        self.redis = redis
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.cpuset = cpuset
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "streamsvc", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--database", self.database,
            "--admin-token", self.admin_token, "--log-level", "WARNING",
        ]  # fmt: skip
        if self.redis:
            cmd += ["--redis", self.redis]
        return [*cmd, *self.extra_args]

    def spawn(self) -> None:
        """Start the process without waiting for it to answer."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSVC_")}
        env.update(self.env)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=self._pin if self.cpuset else None,
            )

    def _pin(self) -> None:
        os.sched_setaffinity(0, self.cpuset or set())

    def _check_alive(self, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise ServerError(f"the server exited:\n{self._log_tail()}")
        if time.monotonic() > deadline:
            raise ServerError(f"the server did not come up:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def start(self) -> None:
        """Start it and wait until `/healthz` answers 200 (blocking: for scripts)."""
        self.spawn()
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._check_alive(deadline)
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)

    async def start_async(self) -> None:
        """Start it and wait until `/healthz` answers 200, letting the event loop (and the
        clients in it) run meanwhile."""
        self.spawn()
        deadline = time.monotonic() + self.start_timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                self._check_alive(deadline)
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """`kill -9`: no shutdown handlers, no flush, connections dropped on the floor."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """A graceful stop (SIGTERM), then `kill -9` if it takes longer than `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads) so far."""
        return cpu_seconds(self.pid)

    def status_kb(self, key: str) -> int:
        return status_kb(self.pid, key)
