"""Study evidence uploads: every bad row is found and listed, so nothing is applied by halves.

An upload is JSON rows (`{"member", "reflection"?, "quiz_score"?, "self_study"?}`) or the CSV
file a quiz platform exports as it is: its header matched loosely (`csv_rows`), its extra
columns ignored. A field a row leaves out keeps what is stored, so a quiz file that sets scores
only does not undo the reflections ticked on the secretary's page (`merge_evidence`).

A text value (every CSV cell, or a JSON string) is read as a person writes it in a
spreadsheet: `8,5` is 8.5, `x` or `có` is yes, and an empty cell changes nothing. JSON keeps
its types: `null` clears a score.

Rows are numbered from 1 (the first row of the upload; in a CSV file, the line after the
header), as in `domain/roster.py`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streamsvc.domain.models import Evidence
from streamsvc.domain.text import fold
from streamsvc.errors import InvalidInput

__all__ = [
    "COLUMNS",
    "MAX_ROWS",
    "EvidenceRow",
    "RowError",
    "check_members",
    "csv_rows",
    "header_key",
    "merge_evidence",
    "read_evidence",
]

RowError = dict[str, Any]
MAX_ROWS = 100_000
MAX_CODE = 64

#: The names a column may go by, for each field; when several columns of a file match one
#: field, the one whose name comes first here is read and the others are ignored (a quiz
#: export with both "Điểm" and "Kết quả" is read by "Điểm").
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "member": (
        "member",
        "member_code",
        "code",
        "ma",
        "ma_the",
        "ma_dang_vien",
        "so_the",
        "so_the_dang_vien",
        "the_dang_vien",
        "card",
        "ma_so",
    ),
    "quiz_score": (
        "quiz_score",
        "score",
        "diem",
        "diem_so",
        "tong_diem",
        "ket_qua",
        "points",
        "result",
    ),
    "reflection": ("reflection", "thu_hoach", "bai_thu_hoach", "nop_thu_hoach"),
    "self_study": ("self_study", "tu_hoc", "tu_nghien_cuu"),
}
_BOOLEANS = ("reflection", "self_study")
_YES = frozenset({"true", "1", "yes", "x", "co"})
_NO = frozenset({"false", "0", "no", "khong"})
_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")


def header_key(name: str) -> str:
    """A column name as it is matched: case, accents, spaces, `_` and `-` ignored, so
    "Mã đảng viên", "ma_dang_vien" and "MA-DANG-VIEN" are one name."""
    return fold(name).replace(" ", "").replace("_", "").replace("-", "")


_ALIASES: dict[str, tuple[str, int]] = {
    header_key(alias): (name, rank)
    for name, aliases in COLUMNS.items()
    for rank, alias in enumerate(aliases)
}


def _columns(header: Iterable[str | None]) -> dict[str, str]:
    """The column read for each field: {field: column name as the file spells it}."""
    best: dict[str, tuple[int, str]] = {}
    for column in header:
        if column is None:  # cells past the header's last column
            continue
        match = _ALIASES.get(header_key(column))
        if match is not None:
            name, rank = match
            if name not in best or rank < best[name][0]:
                best[name] = (rank, column)
    if "member" not in best:
        raise InvalidInput(
            "the CSV header has no member column; name it one of "
            + ", ".join(COLUMNS["member"])
            + " (case, accents, spaces, _ and - are ignored)",
            code="bad_csv",
        )
    return {name: column for name, (_, column) in best.items()}


def csv_rows(rows: Sequence[Mapping[str | None, Any]]) -> list[dict[str, Any]]:
    """CSV rows (dicts keyed by the file's header) keyed by field instead; other columns
    dropped. An empty file is no rows; a header without a member column is `bad_csv`."""
    if not rows:
        return []
    columns = _columns(rows[0].keys())
    return [
        {name: row.get(column) for name, column in columns.items() if row.get(column) is not None}
        for row in rows
    ]


@dataclass(slots=True)
class EvidenceRow:
    """One row of an upload: the member, the fields it sets (a field left out is not in
    `changes`), and what is wrong with it (nothing, for a row that can be applied)."""

    row: int
    member: str | None
    changes: dict[str, bool | float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _member(value: Any) -> tuple[str | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "missing member"
    if not isinstance(value, str):
        return None, "member must be a string (the member's code)"
    value = value.strip()
    if len(value) > MAX_CODE:
        return None, f"member longer than {MAX_CODE} characters"
    return value, None


def _boolean(key: str, value: Any) -> tuple[bool | None, str | None]:
    """(value or None for unchanged, error)."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str):
        word = fold(value)
        if not word:
            return None, None
        if word in _YES:
            return True, None
        if word in _NO:
            return False, None
        shown = value.strip()[:40]
        return None, f"{key} {shown!r} is not a yes/no value (true/false, 1/0, yes/no, x, có/không)"
    return None, f"{key} must be true or false"


_UNCHANGED = object()


def _score(value: Any, quiz_max: float) -> tuple[object, str | None]:
    """(score, None to clear it, or _UNCHANGED; error)."""
    if value is None:
        return None, None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return _UNCHANGED, None
        if not _NUMBER.fullmatch(text):
            shown = text[:40]
            return _UNCHANGED, f"quiz_score {shown!r} is not a number (write 8.5 or 8,5)"
        number = float(text.replace(",", "."))
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return _UNCHANGED, "quiz_score must be a number or null"
    else:
        number = float(value)
    if not 0 <= number <= quiz_max:
        return _UNCHANGED, f"quiz_score {_show(number)} is outside 0..{_show(quiz_max)}"
    return number, None


def _show(number: float) -> str:
    """8.0 as 8, as a person wrote it (a session's quiz_max may come in as an int)."""
    number = float(number)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else str(number)


def read_evidence(rows: Sequence[Any], quiz_max: float) -> list[EvidenceRow]:
    """Each row read on its own: its member, the fields it sets, and its problems (a bad
    boolean, a score that is not a number or lies outside 0..quiz_max, a member twice)."""
    out: list[EvidenceRow] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            out.append(EvidenceRow(n, None, problems=["not an object"]))
            continue
        member, problem = _member(row.get("member"))
        read = EvidenceRow(n, member, problems=[problem] if problem else [])
        for key in _BOOLEANS:
            if key in row:
                flag, problem = _boolean(key, row[key])
                if problem:
                    read.problems.append(problem)
                elif flag is not None:
                    read.changes[key] = flag
        if "quiz_score" in row:
            score, problem = _score(row["quiz_score"], quiz_max)
            if problem:
                read.problems.append(problem)
            elif score is not _UNCHANGED:
                assert score is None or isinstance(score, float)
                read.changes["quiz_score"] = score
        if member is not None:
            if member in seen:
                read.problems.append(f"duplicate member {member} (also row {seen[member]})")
            else:
                seen[member] = n
        out.append(read)
    return out


def check_members(
    rows: Sequence[EvidenceRow],
    known: Collection[str],
    expected: Collection[str],
    session_id: int,
) -> list[RowError]:
    """Every bad row, in order: its own problems, an unknown member, or a member who is not
    expected at the session (evidence is about having studied this session)."""
    errors: list[RowError] = []
    for read in rows:
        problems = list(read.problems)
        if read.member is not None:
            if read.member not in known:
                problems.append(f"unknown member {read.member}")
            elif read.member not in expected:
                problems.append(f"member {read.member} is not expected at session {session_id}")
        if problems:
            errors.append({"row": read.row, "error": "; ".join(problems)})
    return errors


def merge_evidence(
    rows: Sequence[EvidenceRow],
    stored: Mapping[str, Evidence],
    session_id: int,
    now: datetime,
) -> list[Evidence]:
    """The full rows to store: each upload row's fields laid over what is stored for the
    member (or over nothing handed in), the fields it leaves out kept."""
    merged: list[Evidence] = []
    blank = Evidence(session_id, "")
    for read in rows:
        assert read.member is not None and not read.problems
        base = stored.get(read.member, blank)
        got = read.changes.get
        score = got("quiz_score", base.quiz_score)
        merged.append(
            Evidence(  # built whole, not by dataclasses.replace: a third of the time at 100,000
                session_id,
                read.member,
                reflection=bool(got("reflection", base.reflection)),
                quiz_score=None if score is None else float(score),
                self_study=bool(got("self_study", base.self_study)),
                updated_at=now,
            )
        )
    return merged
