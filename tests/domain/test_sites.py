"""Bulk site rows: what a CSV cell or a JSON value may hold, and how bad rows are listed."""

from __future__ import annotations

import pytest

from streamsvc.domain.sites import MAX_SITES, validate_sites

UNITS = {"TU", "CB1"}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"name": " A ", "kind": "hall"}, ("A", "hall", None, None)),
        ({"name": "A", "kind": "bridge", "unit": "", "capacity": ""}, ("A", "bridge", None, None)),
        (
            {"name": "A", "kind": "broadcast", "unit": "CB1", "capacity": "25"},
            ("A", "broadcast", "CB1", 25),
        ),
        (
            {"name": "A", "kind": "self_study", "unit": None, "capacity": 0},
            ("A", "self_study", None, 0),
        ),
    ],
)
def test_a_good_row_from_csv_or_json(row, expected):
    assert validate_sites([row], UNITS) == ([expected], [])


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("A,hall", "not an object"),
        ({"kind": "hall"}, "missing name"),
        ({"name": 5, "kind": "hall"}, "name must be a string"),
        ({"name": "x" * 301, "kind": "hall"}, "name longer than 300 characters"),
        ({"name": "A", "kind": "Hall"}, "kind must be one of hall, bridge, broadcast, self_study"),
        ({"name": "A", "kind": "hall", "unit": "DB9"}, "unknown unit DB9"),
        ({"name": "A", "kind": "hall", "unit": 7}, "unit must be a code"),
        (
            {"name": "A", "kind": "hall", "capacity": "2.5"},
            "capacity must be a whole number from 0 to 10000000",
        ),
        (
            {"name": "A", "kind": "hall", "capacity": True},
            "capacity must be a whole number from 0 to 10000000",
        ),
        (
            {"name": "A", "kind": "hall", "capacity": 10_000_001},
            "capacity must be a whole number from 0 to 10000000",
        ),
    ],
)
def test_a_bad_row_is_listed_with_its_number(row, error):
    good = {"name": "B", "kind": "hall"}
    assert validate_sites([good, row, good | {"name": "C"}], UNITS) == (
        [("B", "hall", None, None), ("C", "hall", None, None)],
        [{"row": 2, "error": error}],
    )


def test_a_name_twice_names_the_first_row():
    rows = [
        {"name": "A", "kind": "hall"},
        {"name": "B", "kind": "hall"},
        {"name": " A", "kind": "bridge"},
    ]
    assert validate_sites(rows, UNITS)[1] == [{"row": 3, "error": "duplicate name A (also row 1)"}]


def test_more_than_the_limit_is_one_error_and_no_row_is_read():
    rows = [{"name": f"S{i}", "kind": "hall"} for i in range(MAX_SITES + 1)]
    assert validate_sites(rows, UNITS) == (
        [],
        [{"row": MAX_SITES + 1, "error": "more than 50000 sites in one upload"}],
    )
    assert len(validate_sites(rows[:MAX_SITES], UNITS)[0]) == MAX_SITES
