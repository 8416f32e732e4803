"""Study evidence rows: what a JSON value or a CSV cell may hold, the quiz platform's loose
header, every bad row listed with its number, and a partial row laid over what is stored."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from streamsvc.domain.evidence import (
    check_members,
    csv_rows,
    header_key,
    merge_evidence,
    read_evidence,
)
from streamsvc.domain.models import Evidence, Unit
from streamsvc.domain.policy import Scope, UnitTree, rows_outside
from streamsvc.errors import InvalidInput

NOW = datetime(2026, 5, 22, 9, 30, tzinfo=UTC)
SID = 7
KNOWN = {"A1", "A2", "A3", "B1", "Z9"}
EXPECTED = {"A1", "A2", "A3", "B1"}  # Z9 exists but is not in the audience


def errors(rows: list, quiz_max: float = 100.0) -> list[dict]:
    return check_members(read_evidence(rows, quiz_max), KNOWN, EXPECTED, SID)


def changes(row: dict, quiz_max: float = 100.0) -> dict:
    (read,) = read_evidence([{"member": "A1", **row}], quiz_max)
    assert read.problems == []
    return read.changes


def read_csv(text: str) -> list[dict]:
    """What the handler hands the service for a CSV body: rows keyed by the file's header."""
    return csv_rows(list(csv.DictReader(io.StringIO(text, newline=""))))


# -- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({}, {}),
        ({"reflection": True}, {"reflection": True}),
        ({"reflection": False, "self_study": True}, {"reflection": False, "self_study": True}),
        ({"quiz_score": 8}, {"quiz_score": 8.0}),
        ({"quiz_score": 8.5}, {"quiz_score": 8.5}),
        ({"quiz_score": 0}, {"quiz_score": 0.0}),
        ({"quiz_score": 100}, {"quiz_score": 100.0}),
        ({"quiz_score": None}, {"quiz_score": None}),  # JSON null clears a score
        # text, as every CSV cell is: decimal point or comma, an empty cell changes nothing
        ({"quiz_score": "8.5"}, {"quiz_score": 8.5}),
        ({"quiz_score": " 8,5 "}, {"quiz_score": 8.5}),
        ({"quiz_score": "10"}, {"quiz_score": 10.0}),
        ({"quiz_score": ""}, {}),
        ({"quiz_score": "  "}, {}),
        ({"reflection": ""}, {}),
        ({"reflection": "x"}, {"reflection": True}),
        ({"reflection": "X"}, {"reflection": True}),
        ({"reflection": "Có"}, {"reflection": True}),
        ({"reflection": "co"}, {"reflection": True}),
        ({"reflection": "yes"}, {"reflection": True}),
        ({"reflection": "TRUE"}, {"reflection": True}),
        ({"reflection": "1"}, {"reflection": True}),
        ({"reflection": "Không"}, {"reflection": False}),
        ({"reflection": "khong"}, {"reflection": False}),
        ({"reflection": "no"}, {"reflection": False}),
        ({"reflection": "false"}, {"reflection": False}),
        ({"self_study": "0"}, {"self_study": False}),
    ],
)
def test_a_good_row_sets_only_what_it_names(row, expected):
    assert changes(row) == expected


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"quiz_score": "tám"}, "quiz_score 'tám' is not a number (write 8.5 or 8,5)"),
        ({"quiz_score": "8 / 10"}, "quiz_score '8 / 10' is not a number (write 8.5 or 8,5)"),
        ({"quiz_score": "80%"}, "quiz_score '80%' is not a number (write 8.5 or 8,5)"),
        ({"quiz_score": "1e2"}, "quiz_score '1e2' is not a number (write 8.5 or 8,5)"),
        ({"quiz_score": "8,5,1"}, "quiz_score '8,5,1' is not a number (write 8.5 or 8,5)"),
        ({"quiz_score": "nan"}, "quiz_score 'nan' is not a number (write 8.5 or 8,5)"),
        ({"quiz_score": True}, "quiz_score must be a number or null"),
        ({"quiz_score": [8]}, "quiz_score must be a number or null"),
        ({"quiz_score": 100.5}, "quiz_score 100.5 is outside 0..100"),
        ({"quiz_score": -1}, "quiz_score -1 is outside 0..100"),
        ({"quiz_score": "-0,5"}, "quiz_score -0.5 is outside 0..100"),
        ({"quiz_score": "101"}, "quiz_score 101 is outside 0..100"),
        ({"reflection": "maybe"}, "reflection 'maybe' is not a yes/no value"),
        ({"reflection": None}, "reflection must be true or false"),
        ({"reflection": 1}, "reflection must be true or false"),
        ({"self_study": "đã học"}, "self_study 'đã học' is not a yes/no value"),
        ({"member": "Z9"}, f"member Z9 is not expected at session {SID}"),
        ({"member": "NOPE"}, "unknown member NOPE"),
        ({"member": ""}, "missing member"),
        ({"member": None}, "missing member"),
        ({"member": 10000001}, "member must be a string (the member's code)"),
        ({"member": "9" * 65}, "member longer than 64 characters"),
    ],
)
def test_a_bad_row_is_listed_with_its_number(row, error):
    good = [{"member": "A1", "reflection": True}, {"member": "A3", "quiz_score": 9}]
    found = errors([good[0], {"member": "A2", **row}, good[1]])
    assert [e["row"] for e in found] == [2]
    assert found[0]["error"].startswith(error)


def test_the_range_is_the_sessions():
    assert changes({"quiz_score": "9,5"}, quiz_max=10) == {"quiz_score": 9.5}
    assert errors([{"member": "A1", "quiz_score": 10.5}], quiz_max=10) == [
        {"row": 1, "error": "quiz_score 10.5 is outside 0..10"}
    ]


def test_every_bad_row_is_listed_and_a_row_says_all_that_is_wrong_with_it():
    rows = [
        {"member": "A1", "quiz_score": 8},
        "A2,8",
        {"member": "A2", "quiz_score": "abc", "reflection": "hmm"},
        {"member": "A1", "reflection": True},
        {"member": "NOPE", "quiz_score": 200},
        {"member": "B1"},
        {"quiz_score": 5},
    ]
    assert errors(rows) == [
        {"row": 2, "error": "not an object"},
        {
            "row": 3,
            "error": "reflection 'hmm' is not a yes/no value (true/false, 1/0, yes/no, x, "
            "có/không); quiz_score 'abc' is not a number (write 8.5 or 8,5)",
        },
        {"row": 4, "error": "duplicate member A1 (also row 1)"},
        {"row": 5, "error": "quiz_score 200 is outside 0..100; unknown member NOPE"},
        {"row": 7, "error": "missing member"},
    ]


def test_a_member_twice_is_a_duplicate_even_when_spaced_differently():
    assert errors([{"member": "A1"}, {"member": " A1 "}, {"member": "A1"}]) == [
        {"row": 2, "error": "duplicate member A1 (also row 1)"},
        {"row": 3, "error": "duplicate member A1 (also row 1)"},
    ]


def test_rows_outside_the_scope_are_listed_by_the_policy_with_the_same_numbers():
    tree = UnitTree(
        [Unit("TU", "Tỉnh", None), Unit("CB1", "Chi bộ 1", "TU"), Unit("CB2", "Chi bộ 2", "TU")]
    )
    unit_of = {"A1": "CB1", "A2": "CB1", "B1": "CB2"}
    read = read_evidence([{"member": "A1"}, {"member": "B1"}, {"member": "A2"}], 100.0)
    assert check_members(read, KNOWN, EXPECTED, SID) == []
    units = [unit_of[r.member] for r in read if r.member]
    assert rows_outside(Scope("CB1", tree), units) == [
        {"row": 2, "error": "unit CB2 is outside your scope"}
    ]
    assert rows_outside(Scope("TU", tree), units) == []


# -- the loose CSV header ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Mã đảng viên", "madangvien"),
        ("ma_dang_vien", "madangvien"),
        ("MA-DANG-VIEN", "madangvien"),
        (" Số thẻ  Đảng viên ", "sothedangvien"),
        ("Điểm", "diem"),
        ("Tổng điểm", "tongdiem"),
        ("Nộp thu hoạch", "nopthuhoach"),
        ("Tự nghiên cứu", "tunghiencuu"),
        ("quiz_score", "quizscore"),
    ],
)
def test_header_names_ignore_case_accents_spaces_and_dashes(name, key):
    assert header_key(name) == key


def test_a_vietnamese_quiz_export_imports_as_it_is():
    text = (
        "\ufeffSTT,Họ và tên,Mã đảng viên,Điểm,Thời gian nộp\n"
        '1,Nguyễn Văn An,A1,"8,5",22/05/2026 10:15\n'
        "2,Hoàng Thị Đào,A2,10,22/05/2026 10:17\n"
        "3,Nông Văn Đồng,A3,,\n"
    ).removeprefix("\ufeff")  # the handler decodes utf-8-sig
    rows = read_csv(text)
    assert rows == [
        {"member": "A1", "quiz_score": "8,5"},
        {"member": "A2", "quiz_score": "10"},
        {"member": "A3", "quiz_score": ""},
    ]
    read = read_evidence(rows, 10.0)
    assert [(r.member, r.changes, r.problems) for r in read] == [
        ("A1", {"quiz_score": 8.5}, []),
        ("A2", {"quiz_score": 10.0}, []),
        ("A3", {}, []),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("member,reflection,quiz_score", {"member", "reflection", "quiz_score"}),
        ("Member Code,Score", {"member", "quiz_score"}),
        ("Số thẻ đảng viên,Bài thu hoạch,Tự học", {"member", "reflection", "self_study"}),
        ("card,points,extra", {"member", "quiz_score"}),
        ("MA_SO,Kết quả,Tu-Hoc", {"member", "quiz_score", "self_study"}),
        ("Thẻ đảng viên,Điểm số,Thu hoạch", {"member", "quiz_score", "reflection"}),
    ],
)
def test_each_listed_name_finds_its_field(header, expected):
    cells = ",".join("1" for _ in header.split(","))
    (row,) = read_csv(f"{header}\n{cells}\n")
    assert set(row) == expected


def test_when_two_columns_name_one_field_the_first_listed_name_is_read():
    text = "Kết quả,Điểm,Mã số,Mã đảng viên\nĐạt,9,0001,A1\n"
    assert read_csv(text) == [{"member": "A1", "quiz_score": "9"}]


def test_a_header_without_a_member_column_is_a_bad_csv():
    with pytest.raises(InvalidInput) as caught:
        read_csv("STT,Họ và tên,Điểm\n1,Nguyễn Văn An,8\n")
    assert caught.value.code == "bad_csv"
    assert "member" in caught.value.message


def test_an_empty_file_is_no_rows():
    assert read_csv("") == []
    assert read_csv("member,score\n") == []


def test_cells_past_the_header_and_missing_cells_are_ignored():
    assert read_csv("member,score\nA1,8,extra,more\nA2\n") == [
        {"member": "A1", "quiz_score": "8"},
        {"member": "A2"},
    ]


# -- merging onto what is stored -------------------------------------------------------------


def test_a_field_left_out_keeps_the_stored_value():
    stored = {
        "A1": Evidence(SID, "A1", reflection=True, quiz_score=None, self_study=True),
        "A2": Evidence(SID, "A2", reflection=False, quiz_score=7.0),
    }
    read = read_evidence(
        [
            {"member": "A1", "quiz_score": "9"},  # a quiz file: scores only
            {"member": "A2", "reflection": True, "quiz_score": None},  # null clears
            {"member": "A3", "reflection": "x"},  # nothing stored yet
        ],
        10.0,
    )
    assert merge_evidence(read, stored, SID, NOW) == [
        Evidence(SID, "A1", reflection=True, quiz_score=9.0, self_study=True, updated_at=NOW),
        Evidence(SID, "A2", reflection=True, quiz_score=None, self_study=False, updated_at=NOW),
        Evidence(SID, "A3", reflection=True, quiz_score=None, self_study=False, updated_at=NOW),
    ]


def test_a_quiz_file_then_a_reflection_upload_keep_each_others_values():
    quiz = read_evidence(read_csv('Mã đảng viên,Điểm\nA1,"8,5"\n'), 10.0)
    after_quiz = {e.member: e for e in merge_evidence(quiz, {}, SID, NOW)}
    ticks = read_evidence([{"member": "A1", "reflection": True}], 10.0)
    (after,) = merge_evidence(ticks, after_quiz, SID, NOW)
    assert (after.reflection, after.quiz_score) == (True, 8.5)
