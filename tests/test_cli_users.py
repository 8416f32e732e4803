"""`streamsvc user add | list | set` and `streamsvc audit`, straight on the store, on both
stores: the command line is the operator (actor `cli`, no address)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import WSMsgType
from argon2 import PasswordHasher
from builders import open_session, seed_roster
from conftest import ADMIN, REDIS_URL

from streamsvc.cli import main
from streamsvc.config import Settings
from streamsvc.domain.models import Unit
from streamsvc.exports.audit import AUDIT_COLUMNS
from streamsvc.services.revocations import CLOSE_UNAUTHORIZED
from streamsvc.web.app import create_app

UNITS = [
    Unit("P", "Tỉnh ủy", None),
    Unit("D", "Huyện ủy", "P"),
    Unit("C1", "Chi bộ 1", "D"),
    Unit("C2", "Chi bộ 2", "D"),
    Unit("E", "Huyện ủy khác", "P"),
]
PASSWORD = "đúng-mật-khẩu-10"
TODAY = datetime.now(UTC).date()
RANGE = ("--from", str(TODAY - timedelta(days=1)), "--to", str(TODAY + timedelta(days=1)))


async def run_cli(*argv: str) -> int | str | None:
    """The command's exit status; it runs its own event loop, so in a thread of its own."""

    def call() -> int | str | None:
        try:
            return main(list(argv))
        except SystemExit as exc:  # argparse's own errors and --help
            return exc.code

    return await asyncio.to_thread(call)


@pytest.fixture
async def roster(store) -> None:
    await store.upsert_units(UNITS)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


async def test_add_list_set(store, roster, database_url, password_file, capsys):
    db = ("--database", database_url)
    pw = ("--password-file", str(password_file))
    argv = ("user", "add", "hai", "--unit", "D", "--role", "organizer")
    argv += ("--full-name", "Nông Văn Hải")
    assert await run_cli(*argv, *pw, *db) == 0
    assert "created hai: organizer at D (Nông Văn Hải)" in capsys.readouterr().out
    assert await run_cli("user", "add", "mai", "--unit", "C1", "--role", "viewer", *pw, *db) == 0
    assert await run_cli("user", "add", "duc", "--unit", "E", "--role", "admin", *pw, *db) == 0
    capsys.readouterr()

    user = await store.get_user("hai")
    assert (user.full_name, user.unit, user.role) == ("Nông Văn Hải", "D", "organizer")
    assert user.active
    assert PasswordHasher().verify(user.password_hash, PASSWORD)
    assert (await store.get_user("mai")).full_name == "mai"  # the login when no name is given

    assert await run_cli("user", "list", *db) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["LOGIN", "ROLE", "UNIT", "ACTIVE", "FULL", "NAME"]
    assert [line.split()[0] for line in lines[1:]] == ["duc", "hai", "mai"]
    assert lines[2].split() == ["hai", "organizer", "D", "yes", "Nông", "Văn", "Hải"]
    assert await run_cli("user", "list", "--unit", "D", *db) == 0  # D's subtree: D and C1
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["hai", "mai"]

    # a sign-in of hai's, ended at once by a new password
    now = datetime.now(UTC)
    await store.add_auth_token("h" * 64, "hai", now, now + timedelta(hours=12))
    argv = ("user", "set", "hai", "--role", "admin", "--unit", "C2", "--full-name", "Hải")
    assert await run_cli(*argv, *pw, *db) == 0
    assert "changed hai: admin at C2 (Hải); 1 sign-in(s) ended" in capsys.readouterr().out
    user = await store.get_user("hai")
    assert (user.full_name, user.unit, user.role) == ("Hải", "C2", "admin")
    _, _, revoked_at = await store.auth_token("h" * 64)
    assert revoked_at is not None

    await store.add_auth_token("m" * 64, "mai", now, now + timedelta(hours=12))
    assert await run_cli("user", "set", "mai", "--active", "no", *db) == 0
    assert (
        "changed mai: viewer at C1 (mai, inactive); 1 sign-in(s) ended" in capsys.readouterr().out
    )
    assert not (await store.get_user("mai")).active
    assert (await store.auth_token("m" * 64))[2] is not None
    assert await run_cli("user", "set", "mai", "--active", "yes", *db) == 0
    assert (await store.get_user("mai")).active

    entries = [e async for e in store.iter_audit(None, None, actor="cli")]
    users = [e for e in entries if e.action in ("user_created", "user_changed")]
    assert [(e.action, e.target, e.unit) for e in users] == [
        ("user_changed", "mai", "C1"),
        ("user_changed", "mai", "C1"),
        ("user_changed", "hai", "C2"),
        ("user_created", "duc", "E"),
        ("user_created", "mai", "C1"),
        ("user_created", "hai", "D"),
    ]
    assert {e.address for e in users} == {None}
    assert "password" in users[2].detail and PASSWORD not in users[2].detail


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["user", "add", "x1", "--unit", "NOPE", "--role", "viewer", "{pw}"], 2,
         "streamsvc user add: error: unit NOPE does not exist"),
        (["user", "add", "taken", "--unit", "D", "--role", "viewer", "{pw}"], 1,
         "streamsvc user add: error: login taken is taken"),
        (["user", "add", "x2", "--unit", "D", "--role", "viewer", "--password-file", "{short}"], 2,
         "streamsvc user add: error: the password must be 10 to 1024 characters"),
        (["user", "add", "x3", "--unit", "D", "--role", "viewer", "--password-file", "{empty}"], 2,
         "streamsvc user add: error: the password must be 10 to 1024 characters"),
        (["user", "add", "bad login", "--unit", "D", "--role", "viewer", "{pw}"], 2,
         "streamsvc user add: error: login must be 1-64 letters"),
        (["user", "add", "x4", "--unit", "D", "--role", "boss", "{pw}"], 2,
         "streamsvc user add: error: argument --role: invalid choice: 'boss'"),
        (["user", "add", "x5", "--role", "viewer", "{pw}"], 2,
         "streamsvc user add: error: the following arguments are required: --unit"),
        (["user", "add", "x6", "--unit", "D", "--role", "viewer"], 2,
         "streamsvc user add: error: no terminal to ask for the password"),
        (["user", "frob"], 2, "streamsvc user: error: argument ACTION: invalid choice: 'frob'"),
        (["user", "list", "--unit", "NOPE"], 2,
         "streamsvc user list: error: unit NOPE does not exist"),
        (["user", "set", "taken"], 2, "streamsvc user set: error: nothing to change"),
        (["user", "set", "ghost", "--role", "admin"], 2,
         "streamsvc user set: error: no user ghost"),
        (["user", "set", "taken", "--unit", "NOPE"], 2,
         "streamsvc user set: error: unit NOPE does not exist"),
        (["user", "set", "taken", "--active", "maybe"], 2,
         "streamsvc user set: error: argument --active: invalid choice: 'maybe'"),
        (["user", "set", "taken", "--password", "{pw}"], 2,
         "streamsvc user set: error: argument --password-file: not allowed with"),
        (["audit", "--from", "2026-02-30", "--to", "2026-03-01"], 2,
         "streamsvc audit: error: from must be a date"),
        (["audit", "--from", "2026-03-02", "--to", "2026-03-01"], 2,
         "streamsvc audit: error: to must not be before from"),
        (["audit", "--from", "2026-03-01"], 2,
         "streamsvc audit: error: the following arguments are required: --to"),
        (["audit", *RANGE, "--session", "x"], 2,
         "streamsvc audit: error: argument --session: invalid int value: 'x'"),
    ],
)  # fmt: skip
async def test_bad_arguments_end_in_one_line(
    store, roster, database_url, password_file, tmp_path, capsys, argv, status, message
):
    short, empty = tmp_path / "short", tmp_path / "empty"
    short.write_text("123456789\n", encoding="utf-8")
    empty.write_text("", encoding="utf-8")
    pw = ["--password-file", str(password_file)]
    db = ["--database", database_url]
    assert await run_cli("user", "add", "taken", "--unit", "C1", "--role", "viewer", *pw, *db) == 0
    capsys.readouterr()
    filled = []
    for arg in argv:
        filled += pw if arg == "{pw}" else [arg.format(short=short, empty=empty)]
    # the parent's stdin under pytest is no terminal, as in a script
    assert await run_cli(*filled, *db) == status
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert [u.login for u in await store.list_users()] == ["taken"]


@pytest.mark.parametrize("command", [["user", "list"], ["audit", *RANGE]])
async def test_an_unreachable_database_is_one_line(capsys, command):
    url = "postgresql://postgres@127.0.0.1:9/nowhere"  # the discard port: nothing listens
    assert await run_cli(*command, "--database", url) == 1
    err = capsys.readouterr().err
    assert err.startswith("streamsvc: cannot reach PostgreSQL") and err.count("\n") == 1


@pytest.mark.parametrize("command", [[], ["add"], ["list"], ["set"]])
async def test_help(capsys, command):
    argv = ["audit", "--help"] if command == [] else ["user", *command, "--help"]
    assert await run_cli(*argv) == 0
    assert capsys.readouterr().out.startswith(f"usage: streamsvc {' '.join(argv[:-1])}")


async def test_audit_csv_to_a_file_and_to_stdout(
    store, roster, database_url, password_file, tmp_path, capsys
):
    db = ("--database", database_url)
    pw = ("--password-file", str(password_file))
    assert await run_cli("user", "add", "hai", "--unit", "D", "--role", "organizer", *pw, *db) == 0
    assert await run_cli("user", "set", "hai", "--role", "viewer", *db) == 0
    capsys.readouterr()

    out = tmp_path / "audit.csv"
    assert await run_cli("audit", *RANGE, "-o", str(out), *db) == 0
    assert f"{out}: 2 audit entries" in capsys.readouterr().err
    text = out.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads the names right
    rows = list(csv.reader(io.StringIO(text[1:], newline="")))
    assert tuple(rows[0]) == AUDIT_COLUMNS
    # newest first; the detail's wording is AccountService's
    assert [r[1:5] + r[6:] for r in rows[1:]] == [
        ["cli", "user_changed", "", "hai", ""],
        ["cli", "user_created", "", "hai", ""],
    ]
    assert "organizer -> viewer" in rows[1][5] and "organizer" in rows[2][5]
    stamp = datetime.fromisoformat(rows[1][0].replace("Z", "+00:00"))
    assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    assert await run_cli("audit", *RANGE, "--action", "user_created", *db) == 0
    captured = capsys.readouterr()
    assert not captured.out.startswith("\ufeff")  # a pipe gets no BOM
    assert captured.out.splitlines()[0] == ",".join(AUDIT_COLUMNS)
    assert [r[2] for r in csv.reader(io.StringIO(captured.out))][1:] == ["user_created"]
    assert captured.err == ""

    for flags in (["--user", "nobody"], ["--session", "7"]):
        assert await run_cli("audit", *RANGE, *flags, *db) == 0
        assert capsys.readouterr().out.splitlines() == [",".join(AUDIT_COLUMNS)]
    day = str(TODAY - timedelta(days=3))
    assert await run_cli("audit", "--from", day, "--to", day, *db) == 0
    assert capsys.readouterr().out.splitlines() == [",".join(AUDIT_COLUMNS)]


def _read_until(fd: int, marker: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {seen!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 1024)
            assert chunk, f"closed before {marker!r}: {seen!r}"
            seen += chunk
    return seen


@pytest.mark.parametrize(
    ("second", "status", "expected"),
    [
        (PASSWORD, 0, "created tty: viewer at C1"),
        ("something-else", 2, "streamsvc user add: error: the two passwords differ"),
    ],
)
async def test_the_password_is_asked_for_twice_on_the_terminal(
    store, roster, database_url, second, status, expected
):
    """A real terminal (a pseudo-terminal, the process's own session so that getpass uses it)."""
    controller, terminal = os.openpty()
    argv = ["user", "add", "tty", "--unit", "C1", "--role", "viewer", "--database", database_url]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamsvc", *argv],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    os.close(terminal)
    try:
        assert proc.stderr is not None
        await asyncio.to_thread(_read_until, proc.stderr.fileno(), b"Password for tty: ")
        os.write(controller, PASSWORD.encode() + b"\n")
        await asyncio.to_thread(_read_until, proc.stderr.fileno(), b"The same password again: ")
        os.write(controller, second.encode() + b"\n")
        out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status
    assert expected in (out + err).decode()
    assert PASSWORD not in (out + err).decode()  # not echoed
    user = await store.get_user("tty")
    assert (user is not None) == (status == 0)


@pytest.mark.redis
async def test_a_password_set_here_closes_the_users_live_monitor_on_the_server(
    aiohttp_client, database_url, admin_headers, password_file, redis_prefix, monkeypatch, capsys
):
    """The server learns of the ended sign-in on its control bus, through the shared Redis."""
    monkeypatch.setenv("STREAMSVC_REDIS_PREFIX", redis_prefix)
    settings = Settings(
        database=database_url, admin_token=ADMIN, redis=REDIS_URL, redis_prefix=redis_prefix
    )
    client = await aiohttp_client(create_app(settings))
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    db = ("--database", database_url)
    argv = ("user", "add", "lan", "--unit", "DB1", "--role", "viewer")
    assert await run_cli(*argv, "--password-file", str(password_file), *db) == 0
    r = await client.post("/api/v1/auth/login", json={"login": "lan", "password": PASSWORD})
    assert r.status == 200, await r.text()
    token = (await r.json())["token"]
    ws = await client.ws_connect("/ws/monitor")
    await ws.send_json({"type": "hello", "token": token, "session": session["id"]})
    assert (await asyncio.wait_for(ws.receive_json(), 10))["type"] == "snapshot"

    new = password_file.with_name("new")
    new.write_text("một-mật-khẩu-mới\n", encoding="utf-8")
    argv = ("user", "set", "lan", "--password-file", str(new), "--redis", REDIS_URL)
    assert await run_cli(*argv, *db) == 0
    assert capsys.readouterr().out.strip().endswith("; 1 sign-in(s) ended")
    while True:  # deltas may come first
        msg = await asyncio.wait_for(ws.receive(), 10)
        if msg.type != WSMsgType.TEXT or json.loads(msg.data)["type"] == "error":
            break
    assert json.loads(msg.data)["code"] == "unauthorized"
    await asyncio.wait_for(ws.receive(), 10)
    assert ws.close_code == CLOSE_UNAUTHORIZED
    r = await client.get("/api/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 401
