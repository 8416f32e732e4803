"""`streamsvc-monitor`: the pure live view (snapshot, delta merge, gap → resync), the
screen it draws, its command line, and `--once` against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from builders import checkin
from clientworld import make_world
from serverproc import ServerProcess, until
from streamsvc_clients.monitor import LiveView, MonitorError, follow, main, render

NOW = datetime(2026, 5, 22, 0, 40, tzinfo=UTC)


def live() -> dict[str, Any]:
    return {
        "session": 7,
        "expected": 6,
        "present": 1,
        "guests": 0,
        "unexpected": 0,
        "sites": [
            {"id": 1, "name": "Hội trường", "kind": "hall", "present": 1, "guests": 0,
             "connected": True, "last_event_at": "2026-05-22T00:37:10Z"},
            {"id": 2, "name": "Điểm cầu Ba Bể", "kind": "bridge", "present": 0, "guests": 0,
             "connected": False, "last_event_at": None},
        ],
        "units": [
            {"code": "TU", "name": "Tỉnh ủy", "parent": None, "expected": 6, "present": 1},
            {"code": "DB1", "name": "Đảng bộ Ba Bể", "parent": "TU", "expected": 4, "present": 1},
            {"code": "CB1", "name": "Chi bộ Đồng Phúc", "parent": "DB1", "expected": 2,
             "present": 1},
        ],
        "curve": [{"minute": "2026-05-22T00:37:00Z", "checkins": 1}],
    }  # fmt: skip


def snapshot(seq: int, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "snapshot", "seq": seq, "live": copy.deepcopy(data or live())}


def test_a_snapshot_then_deltas_in_order_are_merged() -> None:
    view = LiveView()
    assert view.apply(snapshot(4)) is False
    delta = {
        "type": "delta",
        "seq": 5,
        "present": 2,
        "unexpected": 1,
        "guests": 30,
        "sites": [dict(live()["sites"][1], present=1, guests=30, connected=True)],
        "units": [{"code": "DB1", "name": "Đảng bộ Ba Bể", "parent": "TU", "expected": 4,
                   "present": 2}],
        "curve": [{"minute": "2026-05-22T00:38:00Z", "checkins": 2}],
    }  # fmt: skip
    assert view.apply(delta) is False
    assert view.seq == 5
    state = view.live
    assert state is not None
    assert (state["present"], state["unexpected"], state["guests"]) == (2, 1, 30)
    assert [s["present"] for s in state["sites"]] == [1, 1]
    assert state["sites"][1]["connected"] is True
    assert [u["present"] for u in state["units"]] == [1, 2, 1]
    assert [m["minute"][11:16] for m in state["curve"]] == ["00:37", "00:38"]
    assert state["expected"] == 6  # a delta does not carry it; the snapshot's stays


def test_a_new_site_in_a_delta_is_added() -> None:
    view = LiveView()
    view.apply(snapshot(1))
    site = {"id": 3, "name": "Nhà văn hóa", "kind": "broadcast", "present": 0, "guests": 12,
            "connected": True, "last_event_at": "2026-05-22T00:39:00Z"}  # fmt: skip
    view.apply({"type": "delta", "seq": 2, "sites": [site]})
    assert view.live is not None and [s["id"] for s in view.live["sites"]] == [1, 2, 3]


def test_a_gap_asks_once_for_a_resync_and_the_next_snapshot_wins() -> None:
    view = LiveView()
    view.apply(snapshot(10))
    assert view.apply({"type": "delta", "seq": 12, "present": 5}) is True
    # until the new snapshot comes, deltas are neither applied nor cause more resyncs
    assert view.apply({"type": "delta", "seq": 13, "present": 6}) is False
    assert view.apply({"type": "delta", "seq": 15, "present": 6}) is False
    assert view.live is not None and view.live["present"] == 1
    view.apply(snapshot(15, dict(live(), present=6)))
    assert (view.seq, view.live["present"]) == (15, 6)
    assert view.apply({"type": "delta", "seq": 16, "present": 4}) is False
    assert view.live["present"] == 4


def test_old_deltas_and_other_messages_are_ignored() -> None:
    view = LiveView()
    assert view.apply({"type": "delta", "seq": 1, "present": 3}) is False  # before a snapshot
    assert view.live is None
    view.apply(snapshot(3))
    assert view.apply({"type": "delta", "seq": 3, "present": 9}) is False
    assert view.apply({"type": "delta", "seq": 2, "present": 9}) is False
    assert view.apply({"type": "error", "code": "bad_message"}) is False
    assert view.live is not None and view.live["present"] == 1 and view.seq == 3


def test_render_shows_the_rate_top_units_and_sites() -> None:
    lines = render(live(), NOW, title="Nghị quyết XIV")
    text = "\n".join(lines)
    assert lines[0] == "session 7 · Nghị quyết XIV"
    assert lines[1] == "present 1 of 6 (16.7%)  guests 0  unexpected 0"
    assert "Tỉnh ủy" in text and "Đảng bộ Ba Bể" in text
    assert "Chi bộ Đồng Phúc" not in text  # only the top two levels by default
    assert "Chi bộ Đồng Phúc" in "\n".join(render(live(), NOW, depth=3))
    hall = next(line for line in lines if "Hội trường" in line)
    assert "connected" in hall and "last event 2 min ago" in hall
    bridge = next(line for line in lines if "Điểm cầu" in line)
    assert "silent" in bridge and "no event yet" in bridge
    assert "reconnecting" in render(live(), NOW, connected=False)[0]
    empty = render({"session": 1, "expected": 0, "present": 0}, NOW)
    assert empty[1].startswith("present 0 of 0 (-)")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--server", "http://h:1", "--token", "t", "--session", "x"],
        ["--server", "http://h:1", "--token", "t", "--session", "0"],
        ["--server", "h:1", "--token", "t", "--session", "1"],
    ],
)
def test_bad_arguments_fail_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("streamsvc-monitor: error:"), err


# --- against a real server -------------------------------------------------------------------


@pytest.fixture
def server(sqlite_server: ServerProcess) -> ServerProcess:
    """The store makes no difference here: SQLite only."""
    return sqlite_server


async def test_once_shows_present_of_expected(server: ServerProcess) -> None:
    world = await make_world(server)
    async with aiohttp.ClientSession() as http:
        r = await http.post(
            f"{server.url}/api/v1/sessions/{world.session_id}/checkins",
            json={"items": [checkin("10000001"), checkin("10000003"), checkin("10000005")]},
            headers={"Authorization": f"Bearer {world.token}"},
        )
        assert r.status == 200, await r.text()

    out = io.StringIO()
    await follow(server.url, server.admin_token, world.session_id, out, once=True)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"session {world.session_id} · Học tập Nghị quyết Đại hội XIV"
    assert lines[1] == "present 3 of 6 (50.0%)  guests 0  unexpected 0"
    assert any("Hội trường tỉnh" in line and "present     3" in line for line in lines)

    # followed live: a check-in arrives as a delta and the screen shows it
    following = io.StringIO()
    task = asyncio.create_task(
        follow(server.url, server.admin_token, world.session_id, following, every=0.01)
    )
    try:
        await until(lambda: "present 3 of 6" in following.getvalue(), 10, "the snapshot")
        async with aiohttp.ClientSession() as http:
            r = await http.post(
                f"{server.url}/api/v1/sessions/{world.session_id}/checkins",
                json={
                    "items": [checkin("10000002"), {**checkin("x"), "type": "guests", "count": 25}]
                },
                headers={"Authorization": f"Bearer {world.token}"},
            )
            assert r.status == 200, await r.text()
        await until(
            lambda: "present 4 of 6 (66.7%)  guests 25" in following.getvalue(), 10, "a delta"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with pytest.raises(MonitorError, match="admin token"):
        await follow(server.url, "wrong", world.session_id, io.StringIO(), once=True)
    with pytest.raises(MonitorError, match="999"):
        await follow(server.url, server.admin_token, 999, io.StringIO(), once=True)

    # the command itself: one snapshot on stdout, exit 0; a refused token: one line, exit 1
    base = [sys.executable, "-m", "streamsvc_clients.monitor", "--server", server.url]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    run = subprocess.run(
        [*base, "--token", server.admin_token, "--session", str(world.session_id), "--once"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert run.returncode == 0 and "present 4 of 6 (66.7%)" in run.stdout, run.stderr
    run = subprocess.run(
        [*base, "--token", "wrong", "--session", str(world.session_id), "--once"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
