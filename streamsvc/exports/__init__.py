"""Writers for reconciled attendance: CSV, XLSX and the streamed JSON document.

Each takes the records as an iterator and a `write(bytes)` callable, consumes the records
once, in order, and writes as it goes, so memory stays flat however large the session.
They are synchronous on purpose: the service runs them in a worker thread.
"""

from __future__ import annotations

from streamsvc.exports.columns import COLUMNS, SUMMARY_COLUMNS
from streamsvc.exports.csvfile import write_csv, write_rows_csv
from streamsvc.exports.jsondoc import write_json
from streamsvc.exports.workbook import stream_xlsx, stream_yearly_xlsx, write_xlsx

__all__ = [
    "COLUMNS",
    "SUMMARY_COLUMNS",
    "stream_xlsx",
    "stream_yearly_xlsx",
    "write_csv",
    "write_json",
    "write_rows_csv",
    "write_xlsx",
]
