"""The attendance workbook: records on the first sheet, the per-unit summary on the second.

XlsxWriter in `constant_memory` mode flushes each row to a temporary file as soon as the
next one starts, so a 2,000,000-row sheet needs no more memory than one row. The price is
that rows go strictly in order and every cell is written once; column widths and the
autofilter only describe the sheet and can be set at the end, once the widths are known.
Text cells are written with `write_string`, never `write`: a name starting with `=` stays
text and never becomes a formula.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import xlsxwriter

from streamsvc.domain.reconcile import AttendanceRecord
from streamsvc.exports.columns import (
    COLUMNS,
    SUMMARY_COLUMNS,
    Row,
    UnitSummaries,
    record_rows,
    summary_rows,
)

__all__ = ["RECORDS_SHEET", "SUMMARY_SHEET", "stream_xlsx", "write_xlsx"]

RECORDS_SHEET = "attendance"
SUMMARY_SHEET = "summary"
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
) -> int:
    """Write the workbook to `path`; `summaries` is called after the last record.

    Returns the number of record rows.
    """
    workbook = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "tmpdir": tmpdir},
    )
    try:
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1})
        rate = workbook.add_format({"num_format": "0.00%"})
        sheet = workbook.add_worksheet(RECORDS_SHEET)
        count = _fill(sheet, COLUMNS, record_rows(records, unit_names), header, {})
        summary = workbook.add_worksheet(SUMMARY_SHEET)
        _fill(summary, SUMMARY_COLUMNS, summary_rows(summaries), header, {8: rate})
    finally:
        workbook.close()
    return count


def stream_xlsx(
    records: Iterable[AttendanceRecord],
    unit_names: Mapping[str, str],
    summaries: UnitSummaries,
    write: Callable[[bytes], object],
) -> int:
    """Build the workbook in a temporary folder (XlsxWriter needs a file), then `write` it out
    in chunks, as `write_csv` does. Returns the number of record rows."""
    with tempfile.TemporaryDirectory(prefix="streamsvc-xlsx-") as folder:
        path = os.path.join(folder, "attendance.xlsx")
        count = write_xlsx(path, records, unit_names, summaries, tmpdir=folder)
        with open(path, "rb") as built:
            while chunk := built.read(FILE_CHUNK):
                write(chunk)
    return count


def _fill(
    sheet: Any,
    columns: tuple[str, ...],
    rows: Iterable[Row],
    header: Any,
    formats: dict[int, Any],
) -> int:
    """Header, rows, then a frozen header row, an autofilter and widths that fit the data."""
    widths = [len(name) for name in columns]
    for col, name in enumerate(columns):
        sheet.write_string(0, col, name, header)
    write_string, write_number = sheet.write_string, sheet.write_number
    row_index = 0
    for row_index, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if value is None or value == "":  # a blank cell, not an empty string
                continue
            if isinstance(value, str):
                write_string(row_index, col, value)
                width = len(value)
            else:
                write_number(row_index, col, value, formats.get(col))
                width = len(str(value))
            if width > widths[col]:
                widths[col] = width
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(row_index, 1), len(columns) - 1)
    for col, width in enumerate(widths):
        sheet.set_column(col, col, min(max(width, MIN_WIDTH), MAX_WIDTH) + 2)
    return row_index
