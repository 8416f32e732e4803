"""Fixtures of the domain tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamsvc.domain import expected


@pytest.fixture(scope="module", params=["dict", "compact"])
def expected_form(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests twice: the expected members in a dict (a province) and in the
    compact sorted form the national day's 2,000,000 members take (`domain.expected`)."""
    saved = expected.COMPACT_FROM
    expected.COMPACT_FROM = 0 if request.param == "compact" else saved
    try:
        yield request.param
    finally:
        expected.COMPACT_FROM = saved
