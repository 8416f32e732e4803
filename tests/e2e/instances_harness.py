"""Two real `streamsvc serve` instances on one new PostgreSQL database and one Redis, and nginx
in front when asked: the harness of `deploy/trial`, started and torn down the same way for
every multi-instance test (test_instances, test_accounts_instances, test_token_reset_instances).
"""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from conftest import (
    ADMIN,
    REDIS_URL,
    create_pg_database,
    drop_pg_database,
    require_postgres,
    require_redis,
)

_path = Path(__file__).resolve().parents[2] / "deploy" / "trial"
_loader = importlib.machinery.SourceFileLoader("deploy_trial", str(_path))
_spec = importlib.util.spec_from_loader("deploy_trial", _loader)
assert _spec is not None
trial = importlib.util.module_from_spec(_spec)
_loader.exec_module(trial)

Nginx = Literal["none", "if_installed", "required"]


@dataclass
class Cluster:
    """What a test needs of the running instances. `instances` holds (port, process) pairs;
    a test that restarts one puts the new process in its place, and teardown stops it too."""

    urls: list[str]
    proxy: str | None
    database: str
    logs: Path
    instances: list[tuple[int, subprocess.Popen[bytes]]]
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _nginx_missing(required: bool) -> None:
    """In CI nginx must be there (.ci/run installs it); elsewhere a test that needs it skips."""
    if os.environ.get("CI", "").lower() in ("1", "true"):
        pytest.fail("nginx is missing; .ci/run installs it (apt-get install nginx-light)")
    if required:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")


@asynccontextmanager
async def running_instances(
    tmp_path: Path,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    nginx: Nginx = "none",
) -> AsyncIterator[Cluster]:
    """Start two instances (and nginx per `nginx`), yield them, then stop them all and drop
    the database, whatever the test did."""
    require_postgres()
    require_redis()
    if nginx == "required" and not trial.nginx_binary():
        _nginx_missing(required=True)
    monkeypatch.setenv("STREAMSVC_REDIS_PREFIX", redis_prefix)
    database = await create_pg_database()
    cluster = Cluster([], None, database, tmp_path, [])
    try:
        cluster.instances = await asyncio.to_thread(
            trial.start_instances, 2, database, REDIS_URL, ADMIN, tmp_path
        )
        cluster.urls = [f"http://127.0.0.1:{port}" for port, _ in cluster.instances]
        if nginx != "none":
            if trial.nginx_binary():
                listen = trial.free_port()
                ports = [port for port, _ in cluster.instances]
                cluster.others.append(
                    await asyncio.to_thread(trial.start_nginx, listen, ports, tmp_path)
                )
                cluster.proxy = f"http://127.0.0.1:{listen}"
            else:
                _nginx_missing(required=False)
        yield cluster
    finally:
        procs = [proc for _, proc in cluster.instances] + cluster.others
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except Exception:
                proc.kill()
        await drop_pg_database(database)
