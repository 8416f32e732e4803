"""`streamsvc backup FILE`: SQLite's online backup, safe while check-ins are committed, and a
restore drill (back up, stop, put the copy in place, start: the same attendance export)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest
from builders import add_site, checkin, open_session, seed_roster
from conftest import ADMIN
from serverproc import ServerProcess, stored_ids, until
from streamsvc_clients.load import LoadConfig, Simulation, prepare

from streamsvc.cli import main

AUTH = {"Authorization": f"Bearer {ADMIN}"}


async def _backup(database: str, target: Path) -> tuple[int, str, str]:
    """`streamsvc backup` as its own process, the event loop (and the clients) going on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamsvc", "backup", str(target), "--database", database,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _quick_check(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA quick_check").fetchone()[0])


@pytest.mark.slow
async def test_a_backup_while_check_ins_commit_holds_every_event_acked_before_it(tmp_path):
    database = f"sqlite:///{tmp_path / 'streamsvc.db'}"
    server = ServerProcess(database, tmp_path / "server.log")
    await server.start()
    try:
        cfg = LoadConfig(
            url=server.url, admin_token=ADMIN, sites=10, members=500, units=2, events=20_000,
            batch=10, rate=4000, record_ids=True, timeout=60,
        )  # fmt: skip
        prepared = await prepare(cfg)
        sim = Simulation(cfg, prepared)
        results = sim.stats.results
        assert results is not None
        load = asyncio.create_task(sim.run())
        await until(lambda: len(results) >= 2000, 30, "2,000 check-ins acked")
        acked_before = set(results)
        code, out, err = await _backup(database, tmp_path / "copy.db")
        acked_during = len(results) - len(acked_before)
        stats = await load
    finally:
        server.stop()
    assert code == 0, err
    assert out.startswith("backed up ") and "copy.db" in out
    assert "backing up streamsvc.db" in err  # the progress line
    assert acked_during > 0, "the load ended before the backup: nothing was tested"
    assert sim.unacked == 0 and not stats.errors, stats.errors

    assert _quick_check(tmp_path / "copy.db") == "ok"
    assert not (tmp_path / "copy.db-wal").exists()
    copied = await stored_ids(f"sqlite:///{tmp_path / 'copy.db'}", prepared.session_id)
    assert acked_before <= set(copied)
    assert set(copied) <= set(results)
    assert max(copied.values()) == 1


@pytest.mark.slow
async def test_restore_drill_gives_back_the_same_attendance_export(tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    database = f"sqlite:///{live / 'streamsvc.db'}"
    server = ServerProcess(database, tmp_path / "server.log")
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            await seed_roster(http, AUTH)
            session = await open_session(http, AUTH)
            sid = session["id"]
            site = await add_site(http, AUTH, sid)
            site_auth = {"Authorization": f"Bearer {site['token']}"}

            async def check_in(*members: str) -> None:
                body = {"items": [checkin(m) for m in members]}
                resp = await http.post(
                    f"/api/v1/sessions/{sid}/checkins", json=body, headers=site_auth
                )
                assert resp.status == 200, await resp.text()
                assert {r["result"] for r in (await resp.json())["results"]} == {"accepted"}

            async def export() -> bytes:
                resp = await http.get(f"/api/v1/sessions/{sid}/attendance.csv", headers=AUTH)
                assert resp.status == 200, await resp.text()
                return await resp.read()

            await check_in("10000001", "10000002", "10000005")
            before = await export()
            code, _, err = await _backup(database, tmp_path / "backup.db")
            assert code == 0, err
            await check_in("10000003", "10000004")  # after the backup: gone once restored
            assert await export() != before
        server.stop()

        for stale in live.iterdir():  # the database and its -wal and -shm files
            stale.unlink()
        shutil.copyfile(tmp_path / "backup.db", live / "streamsvc.db")
        await server.start()
        async with aiohttp.ClientSession(base_url=server.url) as http:
            resp = await http.get(f"/api/v1/sessions/{sid}/attendance.csv", headers=AUTH)
            assert resp.status == 200
            assert await resp.read() == before
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("database", "target", "message"),
    [
        (
            "postgresql://postgres@127.0.0.1/streamsvc",
            "copy.db",
            "PostgreSQL database: back it up with pg_dump",
        ),
        ("sqlite:///{tmp}/missing.db", "copy.db", "no database at"),
        ("mysql://db/streamsvc", "copy.db", "copies SQLite databases"),
        ("sqlite:///{tmp}/streamsvc.db", "no-such-folder/copy.db", "does not exist"),
        ("sqlite:///{tmp}/streamsvc.db", "streamsvc.db", "another file than the database"),
    ],
)
def test_a_backup_that_cannot_be_made_says_why_in_one_line(
    tmp_path, capsys, monkeypatch, database, target, message
):
    with contextlib.closing(sqlite3.connect(tmp_path / "streamsvc.db")) as conn:
        conn.execute("CREATE TABLE t (x)")
    monkeypatch.chdir(tmp_path)
    code = main(["backup", target, "--database", database.format(tmp=tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("streamsvc backup: error: ")
    assert message in err
    assert not list(tmp_path.glob(".*.partial"))


def test_a_backup_copies_the_database_into_one_file(tmp_path, capsys):
    source = tmp_path / "streamsvc.db"
    with contextlib.closing(sqlite3.connect(source)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10_000)])
        conn.commit()
    assert main(["backup", str(tmp_path / "copy.db"), "--database", f"sqlite:///{source}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"backed up {source} to ")
    with contextlib.closing(sqlite3.connect(tmp_path / "copy.db")) as conn:
        assert conn.execute("SELECT count(*), sum(x) FROM t").fetchone() == (10_000, 49_995_000)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
