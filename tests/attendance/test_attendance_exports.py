"""The CSV and XLSX downloads, read back with the csv module and openpyxl, on both stores."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from attendance_world import TOTAL, UNIT_NAMES, build_world, expected_records

HEADER = (
    "member,full_name,unit,unit_name,status,form,site,first_in,last_out,minutes,flags,excuse,"
    "reflection,quiz_score,completed"
)


def as_row(record: dict) -> list[str]:
    """A JSON record as the CSV writes it: empty cells for null, flags joined with `;`."""
    return [
        record["member"],
        record["full_name"],
        record["unit"],
        UNIT_NAMES[record["unit"]],
        record["status"],
        record["form"] or "",
        "" if record["site"] is None else str(record["site"]),
        record["first_in"] or "",
        record["last_out"] or "",
        str(record["minutes"]),
        ";".join(record["flags"]),
        record["excuse"] or "",
        "true" if record["reflection"] else "false",
        "" if record["quiz_score"] is None else str(record["quiz_score"]),
        "true" if record["completed"] else "false",
    ]


async def test_csv_download(client, admin_headers):
    world = await build_world(client, admin_headers)
    r = await client.get(f"/api/v1/sessions/{world.sid}/attendance.csv", headers=admin_headers)
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert r.headers["Content-Disposition"] == (
        f'attachment; filename="session-{world.sid}-attendance.csv"'
    )
    raw = await r.read()
    assert raw.startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == HEADER.split(",")
    assert rows[1:] == [as_row(record) for record in expected_records(world)]
    by_code = {row[0]: row for row in rows[1:]}
    assert by_code["ĐV-08"][1] == "Đồng Thị Hà"  # Vietnamese text intact
    assert by_code["DV-04"][10] == "multi_site;left_early;late_upload"
    assert by_code["DV-01"][6] == str(world.sites["hall"]["id"])  # the site's id


async def test_xlsx_download(client, admin_headers, tmp_path):
    world = await build_world(client, admin_headers)
    r = await client.get(f"/api/v1/sessions/{world.sid}/attendance.xlsx", headers=admin_headers)
    assert r.status == 200
    assert r.headers["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    path = tmp_path / "attendance.xlsx"
    path.write_bytes(await r.read())
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["attendance", "summary"]

    sheet = book["attendance"]
    records = expected_records(world)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:O{len(records) + 1}"
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADER.split(",")

    def cell(value: str) -> object:
        return value or None

    want = [[cell(v) for v in as_row(record)] for record in records]
    for row in want:  # numbers stay numbers and booleans booleans in the workbook
        row[6] = None if row[6] is None else int(row[6])
        row[9] = int(row[9])
        row[12] = row[12] == "true"
        row[14] = row[14] == "true"
    assert rows[1:] == want
    # Widths fit the longest value of each column (the header at least), within limits.
    longest_name = max(len(r["full_name"]) for r in records)
    assert sheet.column_dimensions["B"].width >= longest_name
    assert sheet.column_dimensions["L"].width >= len("đi công tác")
    assert sheet.column_dimensions["A"].width < sheet.column_dimensions["B"].width

    summary = book["summary"]
    assert summary.freeze_panes == "A2"
    rows = [list(row) for row in summary.iter_rows(values_only=True)]
    assert rows[0] == [
        "code", "name", "expected", "present", "late", "excused", "made_up", "absent", "rate",
        "completed",
    ]  # fmt: skip
    assert rows[1:] == [
        ["D1", UNIT_NAMES["D1"], 10, 4, 1, 1, 2, 2, 0.7, 7],
        ["C1", UNIT_NAMES["C1"], 5, 3, 1, 0, 1, 0, 1, 5],
        ["C2", UNIT_NAMES["C2"], 5, 1, 0, 1, 1, 2, 0.4, 2],
        [None, "total", *TOTAL.values()],
    ]
    assert summary["I2"].number_format == "0.00%"


async def test_formula_like_text_stays_text(client, admin_headers, tmp_path):
    """A name that looks like a formula is written as text, never run by a spreadsheet."""
    world = await build_world(client, admin_headers)
    member = {"code": "DV-01", "full_name": '=HYPERLINK("http://x")', "unit": "C1"}
    r = await client.post("/api/v1/members", json={"members": [member]}, headers=admin_headers)
    assert r.status == 200
    r = await client.get(f"/api/v1/sessions/{world.sid}/attendance.xlsx", headers=admin_headers)
    path = tmp_path / "a.xlsx"
    path.write_bytes(await r.read())
    cell = openpyxl.load_workbook(path)["attendance"]["B3"]
    assert (cell.value, cell.data_type) == (member["full_name"], "s")


async def test_a_failure_after_the_first_byte_cuts_the_download(
    client, admin_headers, monkeypatch, caplog
):
    """The status line is out by then: a truncated body must not look like a whole file."""
    import aiohttp

    from streamsvc.services import attendance

    def failing(records, unit_names, write):
        write(b"\xef\xbb\xbfmember,full_name\r\n" + b"x" * 300_000)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(attendance, "write_csv", failing)
    world = await build_world(client, admin_headers)
    r = await client.get(f"/api/v1/sessions/{world.sid}/attendance.csv", headers=admin_headers)
    assert r.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await r.read()
    assert "disk on fire" in caplog.text
