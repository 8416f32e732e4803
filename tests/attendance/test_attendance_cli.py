"""`streamsvc export` and `streamsvc report absences`, straight on the store, on both stores."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import openpyxl
import pytest
from attendance_world import build_world

from streamsvc.cli import main


async def run_cli(*argv: str) -> int | str | None:
    """The command's exit status; it runs its own event loop, so in a thread of its own."""

    def call() -> int | str | None:
        try:
            return main(list(argv))
        except SystemExit as exc:  # argparse's own errors
            return exc.code

    return await asyncio.to_thread(call)


async def test_export_csv_and_xlsx(client, admin_headers, database_url, tmp_path, capsys):
    world = await build_world(client, admin_headers)
    out = tmp_path / "s.csv"
    assert await run_cli("export", str(world.sid), "-o", str(out), "--database", database_url) == 0
    r = await client.get(f"/api/v1/sessions/{world.sid}/attendance.csv", headers=admin_headers)
    assert out.read_bytes() == await r.read()
    assert "participation 70.00%" in capsys.readouterr().out

    book = tmp_path / "s.dat"
    argv = ["export", str(world.sid), "--format", "xlsx", "-o", str(book)]
    assert await run_cli(*argv, "--database", database_url) == 0
    with book.open("rb") as f:
        sheet = openpyxl.load_workbook(f)["attendance"]
    assert sheet.max_row == 12
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


async def test_report_absences_json_and_csv(client, admin_headers, database_url, tmp_path):
    world = await build_world(client, admin_headers)
    day = str(world.start.date())
    out = tmp_path / "absences.json"
    argv = ["report", "absences", "--from", day, "--to", day, "--database", database_url]
    assert await run_cli(*argv, "-o", str(out)) == 0
    r = await client.get(f"/api/v1/reports/absences?from={day}&to={day}", headers=admin_headers)
    assert json.loads(out.read_text("utf-8")) == await r.json()

    out = tmp_path / "absences.csv"
    assert await run_cli(*argv, "-o", str(out)) == 0
    text = out.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:], newline="")))
    assert rows == [
        ["member", "full_name", "unit", "absent", "sessions", "incomplete", "incomplete_sessions"],
        ["DV-06", "Ma Thị Phượng", "C2", "1", str(world.sid), "0", ""],
        ["DV-09", "Hà Văn Ích", "C2", "1", str(world.sid), "0", ""],
        ["dv-07", "Đàm Văn Giang", "C2", "1", str(world.makeup), "0", ""],
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "999", "-o", "{tmp}/a.csv"], "session 999 does not exist"),
        (["export", "1", "-o", "{tmp}/a.txt"], "must end in .csv or .xlsx"),
        (["export", "x", "-o", "{tmp}/a.csv"], "invalid int value"),
        (["export", "1", "--format", "pdf", "-o", "{tmp}/a.csv"], "invalid choice"),
        (["report", "absences", "--from", "2026-01-01", "-o", "{tmp}/a.csv"], "--to"),
        (["report", "absences", "--from", "2026-02-30", "--to", "2026-03-01", "-o", "{tmp}/a.csv"],
         "from must be a date"),
        (["report", "absences", "--from", "2026-03-01", "--to", "2026-02-01", "-o", "{tmp}/a.csv"],
         "to must not be before from"),
        (["report", "absences", "--from", "2026-01-01", "--to", "2026-02-01", "-o", "{tmp}/a.xlsx"],
         "must end in .csv or .json"),
        (["report", "sessions"], "invalid choice"),
    ],
)  # fmt: skip
async def test_bad_arguments_end_in_one_line_and_exit_2(
    database_url, tmp_path, capsys, argv, message
):
    argv = [a.format(tmp=tmp_path) for a in argv]
    if argv[0] == "export" or "absences" in argv:
        argv += ["--database", database_url]
    assert await run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "streamsvc.db"])
