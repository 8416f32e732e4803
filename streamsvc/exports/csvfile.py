"""The attendance CSV (and the yearly report's): UTF-8 with a BOM (so Excel reads Vietnamese
names right), RFC 4180."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence

from streamsvc.domain.reconcile import AttendanceRecord
from streamsvc.exports.columns import COLUMNS, CSV_BOOLEANS, Row, record_rows

__all__ = ["BOM", "write_csv", "write_rows_csv"]

BOM = "\ufeff".encode()
#: Bytes gathered before each write: few enough writes, little memory.
CHUNK = 256 * 1024


def write_csv(
    records: Iterable[AttendanceRecord],
    unit_names: Mapping[str, str],
    write: Callable[[bytes], object],
) -> int:
    """Write the header and one row per record as they come; returns the rows written."""
    return write_rows_csv(COLUMNS, record_rows(records, unit_names, CSV_BOOLEANS), write)


def write_rows_csv(
    columns: Sequence[str], rows: Iterable[Row], write: Callable[[bytes], object]
) -> int:
    """Write `columns` as the header, then the rows (None an empty cell) as they come, in
    chunks; returns the rows written. The attendance CSV and the yearly report's share it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    write(BOM + buffer.getvalue().encode())
    buffer.seek(0)
    buffer.truncate()
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
        if buffer.tell() >= CHUNK:
            write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        write(buffer.getvalue().encode())
    return count
