"""The attendance workbook: the records on `attendance` (then `attendance-2`, ...), the
per-unit summary on the last sheet.

XlsxWriter in `constant_memory` mode flushes each row to a temporary file as soon as the
next one starts, so a 2,000,000-row sheet needs no more memory than one row. The price is
that rows go strictly in order and every cell is written once; column widths and the
autofilter only describe the sheet and can be set at the end, once the widths are known.
Text cells are written with `write_string`, never `write`: a name starting with `=` stays
text and never becomes a formula.

A sheet holds 1,048,576 rows with its header, and XlsxWriter drops a cell past that row by
returning -1, not by raising. So records continue on the next sheet with the same header,
and any -1 raises: a national export must never lose a record quietly.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain, islice
from pathlib import Path
from typing import Any

import xlsxwriter

from streamsvc.domain.reconcile import AttendanceRecord
from streamsvc.domain.reports import YearlyReport
from streamsvc.errors import StreamsvcError
from streamsvc.exports.columns import (
    COLUMNS,
    SUMMARY_COLUMNS,
    YEARLY_MEMBER_COLUMNS,
    YEARLY_UNIT_COLUMNS,
    Row,
    UnitSummaries,
    record_rows,
    summary_rows,
    yearly_member_rows,
    yearly_unit_rows,
)

__all__ = [
    "RECORDS_SHEET",
    "SHEET_ROWS",
    "SUMMARY_SHEET",
    "stream_xlsx",
    "stream_yearly_xlsx",
    "write_xlsx",
    "write_yearly_xlsx",
]

RECORDS_SHEET = "attendance"
SUMMARY_SHEET = "summary"
#: Rows on one sheet, the header included: Excel's limit, and XlsxWriter's.
SHEET_ROWS = 1_048_576
#: Widths are in characters; a very long excuse should not make a column a screen wide.
MAX_WIDTH = 60
MIN_WIDTH = 6
#: Bytes copied per write when a finished workbook is sent out.
FILE_CHUNK = 1024 * 1024


def write_xlsx(
    path: str | Path,
    records: Iterable[AttendanceRecord],
    unit_names: Mapping[str, str],
    summaries: UnitSummaries,
    *,
    tmpdir: str | None = None,
    sheet_rows: int = SHEET_ROWS,
) -> int:
    """Write the workbook to `path`; `summaries` is called after the last record.

    `sheet_rows` (header included) is only ever lowered by tests, to reach the next sheet
    with a handful of records. Returns the number of record rows.
    """
    if sheet_rows < 2:
        raise ValueError("a sheet needs room for its header and one record")
    workbook = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "tmpdir": tmpdir},
    )
    try:
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1})
        rate = workbook.add_format({"num_format": "0.00%"})
        count = _fill_records(workbook, record_rows(records, unit_names), header, sheet_rows)
        summary = workbook.add_worksheet(SUMMARY_SHEET)
        widths = _header_widths(SUMMARY_COLUMNS)
        last = _fill(
            summary, SUMMARY_COLUMNS, iter(summary_rows(summaries)), header, {8: rate}, widths
        )
        _finish(summary, len(SUMMARY_COLUMNS), last, widths)
    finally:
        workbook.close()
    return count


def stream_xlsx(
    records: Iterable[AttendanceRecord],
    unit_names: Mapping[str, str],
    summaries: UnitSummaries,
    write: Callable[[bytes], object],
    *,
    sheet_rows: int = SHEET_ROWS,
) -> int:
    """Build the workbook in a temporary folder (XlsxWriter needs a file), then `write` it out
    in chunks, as `write_csv` does. Returns the number of record rows."""
    with tempfile.TemporaryDirectory(prefix="streamsvc-xlsx-") as folder:
        path = os.path.join(folder, "attendance.xlsx")
        count = write_xlsx(
            path, records, unit_names, summaries, tmpdir=folder, sheet_rows=sheet_rows
        )
        _send(path, write)
    return count


def write_yearly_xlsx(
    path: str | Path,
    report: YearlyReport,
    unit_names: Mapping[str, str],
    *,
    tmpdir: str | None = None,
) -> None:
    """The yearly report as a workbook: sheet `members`, then sheet `units` with its rates
    as percentages. The report is already in memory, so one sheet each is plenty (a member
    per row: 1,048,575 members is a whole country's scope)."""
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": tmpdir})
    try:
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1})
        rate = workbook.add_format({"num_format": "0.00%"})
        sheets: tuple[tuple[str, tuple[str, ...], Iterator[Row], dict[int, Any]], ...] = (
            ("members", YEARLY_MEMBER_COLUMNS, yearly_member_rows(report, unit_names), {}),
            ("units", YEARLY_UNIT_COLUMNS, yearly_unit_rows(report), {5: rate, 6: rate}),
        )
        for name, columns, rows, formats in sheets:
            sheet = workbook.add_worksheet(name)
            widths = _header_widths(columns)
            last = _fill(sheet, columns, iter(rows), header, formats, widths)
            _finish(sheet, len(columns), last, widths)
    finally:
        workbook.close()


def stream_yearly_xlsx(
    report: YearlyReport, unit_names: Mapping[str, str], write: Callable[[bytes], object]
) -> None:
    """Build the yearly workbook in a temporary folder, then `write` it out in chunks."""
    with tempfile.TemporaryDirectory(prefix="streamsvc-xlsx-") as folder:
        path = os.path.join(folder, "yearly.xlsx")
        write_yearly_xlsx(path, report, unit_names, tmpdir=folder)
        _send(path, write)


def _send(path: str, write: Callable[[bytes], object]) -> None:
    with open(path, "rb") as built:
        while chunk := built.read(FILE_CHUNK):
            write(chunk)


def _fill_records(workbook: Any, rows: Iterator[Row], header: Any, sheet_rows: int) -> int:
    """The records, `sheet_rows - 1` to a sheet; a next sheet only once a record needs it, so
    a full last sheet leaves no empty one behind. Every sheet gets the widths of them all."""
    widths = _header_widths(COLUMNS)
    filled: list[tuple[Any, int]] = []
    count = 0
    while True:
        name = RECORDS_SHEET if not filled else f"{RECORDS_SHEET}-{len(filled) + 1}"
        sheet = workbook.add_worksheet(name)
        last = _fill(sheet, COLUMNS, islice(rows, sheet_rows - 1), header, {}, widths)
        filled.append((sheet, last))
        count += last
        if last < sheet_rows - 1:
            break
        try:  # a full sheet: is there a record for the next one?
            following = next(rows)
        except StopIteration:
            break
        rows = chain((following,), rows)
    for sheet, last in filled:
        _finish(sheet, len(COLUMNS), last, widths)
    return count


def _header_widths(columns: tuple[str, ...]) -> list[int]:
    return [len(name) for name in columns]


def _fill(
    sheet: Any,
    columns: tuple[str, ...],
    rows: Iterator[Row],
    header: Any,
    formats: dict[int, Any],
    widths: list[int],
) -> int:
    """The header and the rows, widening `widths` to fit; returns the last row's index."""
    for col, name in enumerate(columns):
        _check(sheet.write_string(0, col, name, header), sheet, 0)
    write_string, write_number = sheet.write_string, sheet.write_number
    write_boolean = sheet.write_boolean
    row_index = 0
    for row_index, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if value is None or value == "":  # a blank cell, not an empty string
                continue
            if isinstance(value, str):
                if write_string(row_index, col, value) == -1:
                    _check(-1, sheet, row_index)
                width = len(value)
            elif value is True or value is False:  # before numbers: a bool is an int
                if write_boolean(row_index, col, value) == -1:
                    _check(-1, sheet, row_index)
                width = 5
            else:
                if write_number(row_index, col, value, formats.get(col)) == -1:
                    _check(-1, sheet, row_index)
                width = len(str(value))
            if width > widths[col]:
                widths[col] = width
    return row_index


def _finish(sheet: Any, ncols: int, last: int, widths: list[int]) -> None:
    """A frozen header row, an autofilter over the sheet's rows and widths that fit the data."""
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(last, 1), ncols - 1)
    for col, width in enumerate(widths):
        sheet.set_column(col, col, min(max(width, MIN_WIDTH), MAX_WIDTH) + 2)


def _check(result: int, sheet: Any, row: int) -> None:
    """XlsxWriter answers -1 for a cell it did not write; that is a lost record, so raise."""
    if result == -1:
        raise StreamsvcError(f"the workbook refused row {row + 1} of sheet {sheet.name!r}")
