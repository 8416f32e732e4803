"""No record dropped in the workbook: past a sheet's last row the records go on `attendance-2`,
`attendance-3`, ... with the same header, and `summary` stays last.

The real limit is 1,048,576 rows; here it is lowered to a few rows, and the workbook is read
back with openpyxl.
"""

from __future__ import annotations

import functools
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from attendance_world import build_world, expected_records

import streamsvc.services.attendance as attendance_service
from streamsvc.domain.models import Unit
from streamsvc.domain.reconcile import AttendanceRecord, Summary
from streamsvc.errors import StreamsvcError
from streamsvc.exports import COLUMNS, stream_xlsx, write_xlsx

SHEET_ROWS = 5  # the header and four records


def record(n: int) -> AttendanceRecord:
    name = "Nguyễn Văn " + "A" * (n % 7)  # names of different lengths: widths must agree
    return AttendanceRecord(
        f"DV-{n:04d}", name, "C1", "absent", None, None, None, None, None, n, (), None
    )


def summaries() -> tuple[list[tuple[Unit, Summary]], Summary]:
    total = Summary(expected=3, present=1, late=1, excused=0, made_up=0, absent=1)
    return [(Unit("C1", "Chi bộ xã Quân Hà", None), total)], total


def read_back(path: Path) -> tuple[list[str], dict[str, list[list[object]]], object]:
    book = openpyxl.load_workbook(path)
    rows = {
        name: [list(row) for row in book[name].iter_rows(values_only=True)]
        for name in book.sheetnames
    }
    return book.sheetnames, rows, book


@pytest.mark.parametrize(
    ("records", "sheets"),
    [
        (0, ["attendance"]),
        (1, ["attendance"]),
        (3, ["attendance"]),
        (4, ["attendance"]),  # exactly a full sheet: no empty extra sheet
        (5, ["attendance", "attendance-2"]),  # one row over
        (8, ["attendance", "attendance-2"]),
        (9, ["attendance", "attendance-2", "attendance-3"]),
    ],
)
def test_records_continue_on_the_next_sheet(tmp_path, records, sheets):
    path = tmp_path / "a.xlsx"
    wanted = [record(n) for n in range(records)]
    count = write_xlsx(path, iter(wanted), {"C1": "Chi bộ"}, summaries, sheet_rows=SHEET_ROWS)
    assert count == records

    names, rows, book = read_back(path)
    assert names == [*sheets, "summary"]
    found = []
    for name in sheets:
        assert rows[name][0] == list(COLUMNS)
        assert 1 <= len(rows[name]) <= SHEET_ROWS
        found.extend(row[0] for row in rows[name][1:])
        sheet = book[name]
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:O{max(len(rows[name]), 2)}"
    # every record exactly once, in order, every sheet but the last one full
    assert found == [r.member for r in wanted]
    assert all(len(rows[name]) == SHEET_ROWS for name in sheets[:-1])
    # the same column widths on every records sheet
    widths = {
        name: [book[name].column_dimensions[c].width for c in "ABCDEFGHIJKL"] for name in sheets
    }
    assert all(w == widths["attendance"] for w in widths.values())
    assert rows["summary"][0][:2] == ["code", "name"]
    assert rows["summary"][-1][:3] == [None, "total", 3]


def test_stream_xlsx_takes_the_limit(tmp_path):
    chunks: list[bytes] = []
    stream_xlsx(iter([record(n) for n in range(6)]), {}, summaries, chunks.append, sheet_rows=3)
    path = tmp_path / "s.xlsx"
    path.write_bytes(b"".join(chunks))
    names, rows, _ = read_back(path)
    assert names == ["attendance", "attendance-2", "attendance-3", "summary"]
    assert [row[0] for name in names[:-1] for row in rows[name][1:]] == [
        f"DV-{n:04d}" for n in range(6)
    ]


def test_a_sheet_needs_room_for_a_record(tmp_path):
    with pytest.raises(ValueError):
        write_xlsx(tmp_path / "a.xlsx", iter([]), {}, summaries, sheet_rows=1)


def test_a_row_the_sheet_refuses_raises(tmp_path, monkeypatch):
    """XlsxWriter answers -1 for a row past its sheet's end and writes nothing: the export
    must fail rather than quietly lose the record. Its sheet is made 3 rows long here, as if
    the limit passed in were wrong."""
    add_worksheet = xlsxwriter.Workbook.add_worksheet

    def short_sheet(self, name=None):
        sheet = add_worksheet(self, name)
        sheet.xls_rowmax = 3
        return sheet

    monkeypatch.setattr(xlsxwriter.Workbook, "add_worksheet", short_sheet)
    records = iter([record(n) for n in range(3)])
    with pytest.raises(StreamsvcError, match="row 4 of sheet 'attendance'"):
        write_xlsx(tmp_path / "a.xlsx", records, {}, summaries, sheet_rows=10)


async def test_http_export_over_several_sheets(client, admin_headers, tmp_path, monkeypatch):
    """The download through the service, with a sheet of two records: nothing lost."""
    monkeypatch.setattr(
        attendance_service, "stream_xlsx", functools.partial(stream_xlsx, sheet_rows=3)
    )
    world = await build_world(client, admin_headers)
    r = await client.get(f"/api/v1/sessions/{world.sid}/attendance.xlsx", headers=admin_headers)
    assert r.status == 200
    path = tmp_path / "a.xlsx"
    path.write_bytes(await r.read())
    names, rows, _ = read_back(path)
    records = expected_records(world)
    sheets = -(-len(records) // 2)
    assert names == ["attendance"] + [f"attendance-{n}" for n in range(2, sheets + 1)] + ["summary"]
    assert all(rows[name][0] == list(COLUMNS) for name in names[:-1])
    assert [row[0] for name in names[:-1] for row in rows[name][1:]] == [
        rec["member"] for rec in records
    ]
