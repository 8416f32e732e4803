"""A real `streamsvc serve` process for the benchmarks and the tests, written once.

`ServerProcess` starts the service on a port of its own (a free one unless given), waits for
`/healthz`, and stops it gracefully, kills it with `kill -9` or starts it again on the same
port, the way a coordinator's device sees a server restart. The process readers (`cpu_seconds`,
`status_kb`) take figures from `/proc` while it runs. It lives in the installed clients package
so that the `bench/` scripts, run as files, and the tests import the same code.

`PostgresServer` and `RedisServer` are database and Redis servers of a test's own, on free
ports, that a fault test can restart under a running service without touching the shared ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "ServerProcess",
    "cpu_seconds",
    "free_port",
    "main_thread_cpu_seconds",
    "status_kb",
    "stop_process",
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


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """A graceful stop (SIGTERM), then `kill -9` if it takes longer than `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
        if self.proc is not None:
            stop_process(self.proc, timeout)

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads) so far."""
        return cpu_seconds(self.pid)

    def status_kb(self, key: str) -> int:
        return status_kb(self.pid, key)


# --- database and Redis servers of a test's own, for the fault tests ---------------------------

PG_ROOT = Path("/usr/lib/postgresql")
PG_USER = "postgres"


def _pg_bin() -> Path | None:
    """The newest installed PostgreSQL's `bin` directory (Debian's layout), if any."""
    found = [p.parent for p in PG_ROOT.glob("*/bin/pg_ctl")]
    return max(
        found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, default=None
    )


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user."""
    return ["runuser", "-u", PG_USER, "--"] if os.geteuid() == 0 else []


class PostgresServer:
    """A PostgreSQL server of its own (`initdb` into a fresh directory, `pg_ctl` on a free
    port), so that a test can restart or stop the database under a running service without
    touching the shared one. `unavailable()` says why it cannot run on this machine."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bin = _pg_bin()
        self.directory: Path | None = None

    @staticmethod
    def unavailable() -> str | None:
        """Why a server of our own cannot be started here, or None."""
        if _pg_bin() is None:
            return f"no PostgreSQL server binaries under {PG_ROOT}/*/bin"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root, and runuser (to start PostgreSQL as postgres) is missing"
        return None

    @property
    def data(self) -> Path:
        assert self.directory is not None, "not initialised"
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None, "not initialised"
        return self.directory / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        assert self.bin is not None, PostgresServer.unavailable()
        cmd = [*_as_postgres(), str(self.bin / tool), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = (
                self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            )
            raise ServerError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}{log}")

    def _pg_ctl(self, action: str, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", action, "-D", str(self.data), "-l", str(self.log_path), "-w",
                  "-t", "60", "-o", options, *args)  # fmt: skip

    def start(self) -> None:
        """`initdb` on first use, then start the server and wait until it accepts connections."""
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="streamsvc-pg-"))
            if os.geteuid() == 0:
                shutil.chown(self.directory, PG_USER, PG_USER)
            self._run("initdb", "-D", str(self.data), "-U", PG_USER, "-A", "trust",
                      "-E", "UTF8", "--no-sync")  # fmt: skip
        self._pg_ctl("start")

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m MODE`: every connection is cut; returns once it accepts again."""
        self._pg_ctl("restart", "-m", mode)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def create_database(self, name: str) -> str:
        """An empty database on this server; returns its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, name)
        return self.url(name)

    def remove(self) -> None:
        """Stop the server at once (if it runs) and delete its directory."""
        if self.directory is None:
            return
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


class RedisServer:
    """A `redis-server` of its own on a free port, nothing saved to disk, that a test can
    stop and start again on the same port."""

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.log_path = log_path
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def unavailable() -> str | None:
        """Why a server of our own cannot be started here, or None."""
        return None if shutil.which("redis-server") else "redis-server is not installed"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it answers PING."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"redis-server did not come up:\n{self.log_path.read_text()}")
            time.sleep(0.02)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (nothing to save), then `kill -9` if it lingers."""
        if self.proc is not None:
            stop_process(self.proc, timeout)
