"""`streamsvc-checkin`: input parsing, the command line, and the client against a real server
that is killed (and a client that is killed) in the middle: every scan stored exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders import MEMBERS
from clientworld import World, attendance, make_world, outbox_rows
from serverproc import ServerProcess, stored_ids, until
from streamsvc_clients.checkin import (
    CheckinClient,
    Command,
    describe_result,
    main,
    make_event,
    parse_line,
    read_csv,
)
from streamsvc_clients.outbox import Outbox

CODES = [m["code"] for m in MEMBERS]


# --- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("10000001\n", Command("checkin", member="10000001")),
        ("  10000001  \r\n", Command("checkin", member="10000001")),
        ("\n", None),
        ("   ", None),
        ("guests 25", Command("guests", count=25)),
        ("GUESTS 0", Command("guests", count=0)),
        ("void", Command("void")),
        ("guests", Command("error", error="guests needs a whole number: guests 25")),
        ("guests -3", Command("error", error="guests needs a whole number: guests 25")),
        ("x" * 65, Command("error", error="a member code has at most 64 characters")),
    ],
)
def test_parse_line(line: str, expected: Command | None) -> None:
    assert parse_line(line) == expected


def test_make_event_has_a_fresh_id_and_the_scan_time() -> None:
    now = datetime(2026, 5, 22, 0, 30, 1, 250000, tzinfo=UTC)
    a = make_event(Command("checkin", member="10000001"), now)
    b = make_event(Command("checkin", member="10000001"), now)
    assert a["id"] != b["id"] and uuid.UUID(a["id"]).version == 4
    assert a == {"type": "checkin", "id": a["id"], "member": "10000001", "ts": a["ts"]}
    assert a["ts"] == "2026-05-22T00:30:01.250Z"
    assert make_event(Command("guests", count=7), now)["count"] == 7
    void = make_event(Command("void"), now, target=a["id"])
    assert void == {"type": "void", "id": void["id"], "target": a["id"]}


def test_read_csv_takes_the_member_column_or_the_first(tmp_path: Path) -> None:
    named = tmp_path / "named.csv"
    named.write_text("full_name,member\nAn,10000001\n\nĐào,10000002\n", encoding="utf-8-sig")
    assert read_csv(named) == ["10000001", "10000002"]
    bare = tmp_path / "bare.csv"
    bare.write_text("10000003,Nông Văn Đồng\n10000004\n")
    assert read_csv(bare) == ["10000003", "10000004"]
    coded = tmp_path / "coded.csv"
    coded.write_text("code,full_name\n10000005,Lý Văn Bình\n")
    assert read_csv(coded) == ["10000005"]


def test_describe_result_names_the_member_and_the_site() -> None:
    event = {"type": "checkin", "id": "e1", "member": "10000001"}
    member = {"code": "10000001", "full_name": "Nguyễn Văn An", "unit": "CB1"}
    assert (
        describe_result(event, {"id": "e1", "result": "accepted", "member": member})
        == "✓ 10000001 Nguyễn Văn An (CB1)"
    )
    named = {**member, "unit_name": "Chi bộ Đồng Phúc"}
    assert (
        describe_result(event, {"id": "e1", "result": "accepted", "member": named})
        == "✓ 10000001 Nguyễn Văn An (Chi bộ Đồng Phúc)"
    )
    again = {
        "id": "e1",
        "result": "accepted",
        "member": member,
        "already_present": {"site": 3, "site_name": "Điểm cầu Ba Bể", "ts": "2026-05-22T00:31Z"},
    }
    assert "already present at Điểm cầu Ba Bể" in describe_result(event, again)
    unknown = {"id": "e1", "result": "rejected", "reason": "unknown_member"}
    assert describe_result(event, unknown) == "✗ 10000001: unknown code"
    closed = {"id": "e1", "result": "rejected", "reason": "session_closed"}
    assert describe_result(event, closed) == "✗ 10000001: the session is closed"
    assert "already stored" in describe_result(event, {"id": "e1", "result": "duplicate"})


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: --server, --token"),
        (["--server", "localhost:8080", "--token", "t"], "--server must be http://host:port"),
        (["--server", "http://h:1", "--token", " "], "--token is empty"),
        (["--server", "http://h:1", "--token", "t", "--csv", "/nonexistent.csv"], "--csv"),
        (["--server", "http://h:1", "--token", "t", "--backoff-max", "x"], "invalid float"),
        (["--server", "http://h:1", "--token", "t", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONIOENCODING": "utf-8"}


def _command(server: str, token: str, outbox: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamsvc_clients.checkin",
        "--server",
        server,
        "--token",
        token,
        "--outbox",
        str(outbox),
        "--backoff-max",
        "0.3",
        *extra,
    ]


def test_bad_arguments_in_a_real_process_print_no_traceback(tmp_path: Path) -> None:
    run = subprocess.run(
        _command("ftp://nowhere", "t", tmp_path / "o.sqlite3"),
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(),
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr


# --- against a real server -------------------------------------------------------------------


async def _run(cmd: list[str], stdin: bytes | None = None, timeout: float = 30) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_env(),
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _assert_each_stored_once(database_url: str, world: World, outbox: Path) -> None:
    rows = outbox_rows(outbox)
    assert rows and all(result is not None for _, result in rows), "something is still queued"
    ids = [event_id for event_id, _ in rows]
    stored = await stored_ids(database_url, world.session_id)
    assert set(stored) == set(ids)
    assert max(stored.values()) == 1


async def test_a_csv_is_stored_exactly_once_and_a_bad_token_stops(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    world = await make_world(server)
    scans = tmp_path / "scans.csv"
    scans.write_text("member,full_name\n" + "".join(f"{c},x\n" for c in CODES[:4]) + "99999999,?\n")
    outbox = tmp_path / "outbox.sqlite3"
    code, out = await _run(_command(server.url, world.token, outbox, "--csv", str(scans)))
    assert code == 0, out
    assert "✓ 10000001 Nguyễn Văn An (Chi bộ Đồng Phúc)" in out
    assert "✗ 99999999: unknown code" in out
    assert "[connected · queued 0 · acknowledged 5]" in out

    rows = outbox_rows(outbox)
    stored = await stored_ids(database_url, world.session_id)
    accepted = [i for i, result in rows if '"accepted"' in (result or "")]
    assert len(accepted) == 4 and set(stored) == set(accepted) and max(stored.values()) == 1
    report = await attendance(server, world.session_id)
    records = {r["member"]: r["status"] for r in report["records"]}
    assert [records[c] for c in CODES] == ["present"] * 4 + ["absent"] * 2

    # the same CSV again: new scans, accepted as already present, nothing doubled in attendance
    code, out = await _run(_command(server.url, world.token, outbox, "--csv", str(scans)))
    assert code == 0 and "already present at Hội trường tỉnh" in out, out

    code, out = await _run(_command(server.url, "not-a-token", tmp_path / "other.sqlite3"))
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("streamsvc-checkin:")]
    assert len(errors) == 1 and "unauthorized" in errors[0], out
    assert "Traceback" not in out


async def test_server_kill_9_midway_then_every_scan_stored_once(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    world = await make_world(server)
    results: dict[str, str] = {}
    with Outbox(tmp_path / "outbox.sqlite3") as box:
        client = CheckinClient(
            server.url,
            world.token,
            box,
            device="test",
            on_result=lambda event, result: results.__setitem__(event["id"], result["result"]),
            backoff_initial=0.05,
            backoff_max=0.3,
            batch=5,
            window=2,
        )
        runner = asyncio.create_task(client.run())
        scanned = 0

        def scan(count: int) -> None:
            nonlocal scanned
            for _ in range(count):
                box.add(
                    make_event(Command("checkin", member=CODES[scanned % 6]), datetime.now(UTC))
                )
                scanned += 1
            client.notify()

        async def keep_scanning(stop: asyncio.Event) -> None:
            """A scanner a little faster than the link: always a few scans waiting."""
            while not stop.is_set():
                scan(1)
                await until(lambda: box.counts().queued < 8 or stop.is_set(), 20, "scans sent")

        stop_scanning = asyncio.Event()
        scanner = asyncio.create_task(keep_scanning(stop_scanning))
        await until(lambda: len(results) >= 40 and box.counts().queued > 0, 20, "some scans acked")
        server.kill()
        acked_at_kill = len(results)
        await until(lambda: not client.connected, 10, "the client seeing the server gone")
        stop_scanning.set()
        await scanner
        scan(30)  # scans go on while the server is down
        queued_while_down = box.counts().queued
        await server.start()
        scan(30)
        client.finish()
        await asyncio.wait_for(runner, 30)
        total = scanned
        assert box.counts().queued == 0 and box.counts().acked == total

    assert acked_at_kill < total and queued_while_down > 0
    assert client.connections >= 2
    assert set(results.values()) <= {"accepted", "duplicate"}
    await _assert_each_stored_once(database_url, world, tmp_path / "outbox.sqlite3")


async def test_client_kill_9_then_restart_sends_every_scan_once(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    world = await make_world(server)
    outbox = tmp_path / "outbox.sqlite3"
    cmd = _command(server.url, world.token, outbox)

    # 1. the server is down: scans are only kept; then the client is killed
    server.kill()
    first = [CODES[i % 6] for i in range(30)] + ["guests 12"]
    client = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, env=_env()
    )
    assert client.stdin is not None
    client.stdin.write("".join(f"{line}\n" for line in first).encode())
    await client.stdin.drain()  # stdin stays open: the coordinator has not finished
    await until(lambda: len(outbox_rows(outbox)) == len(first), 20, "the scans in the outbox")
    client.send_signal(signal.SIGKILL)
    assert await client.wait() == -signal.SIGKILL
    assert all(result is None for _, result in outbox_rows(outbox))

    # 2. the server is back; the client starts again with no new input and sends them all
    await server.start()
    code, out = await _run(cmd)
    assert code == 0, out
    assert "31 queued from before" in out
    assert "[connected · queued 0 · acknowledged 31]" in out

    # 3. killed right after it began sending (some acked, some perhaps in flight)
    client = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, env=_env()
    )
    assert client.stdin is not None
    client.stdin.write("".join(f"{CODES[i % 6]}\n" for i in range(40)).encode())
    await client.stdin.drain()

    def some_new_acked() -> bool:
        rows = outbox_rows(outbox)
        return len(rows) == 71 and any(r is not None for _, r in rows[31:])

    await until(some_new_acked, 20, "some of the new scans acked")
    client.send_signal(signal.SIGKILL)
    await client.wait()
    code, out = await _run(cmd)
    assert code == 0, out

    await _assert_each_stored_once(database_url, world, outbox)
    stored = await stored_ids(database_url, world.session_id)
    assert sum(stored.values()) == 71
    summary = (await attendance(server, world.session_id))["summary"]
    assert summary["present"] == 6
