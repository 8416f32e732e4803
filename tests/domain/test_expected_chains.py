"""`ExpectedChains`: the compact form (a sorted blob of fixed-width codes, binary search)
answers exactly as the dict does, whatever the codes: unsorted input, codes that are
prefixes of others, non-ASCII letters, lengths that differ, units outside the subtrees."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streamsvc.domain.expected import ExpectedChains

CHAINS = {"A": (0,), "A1": (1, 0), "A2": (2, 0), "B": (3,)}
codes = st.text(
    alphabet=st.sampled_from("0129ABZaĐđ-ệ_"), min_size=1, max_size=12
)  # no NUL: codes never hold one (the API refuses it)


@settings(max_examples=200, deadline=None)
@given(
    members=st.dictionaries(codes, st.sampled_from([*CHAINS, "outside", "Z"]), max_size=60),
    probes=st.lists(codes, max_size=30),
)
def test_the_compact_form_answers_as_the_dict(members, probes):
    plain = ExpectedChains(members, CHAINS, compact_from=10**9)
    compact = ExpectedChains(members, CHAINS, compact_from=0)
    assert not plain.compact and compact.compact
    assert len(plain) == len(compact) == len(members)
    for code in [*members, *probes, "", "0" * 40]:
        assert (
            compact.get(code)
            == plain.get(code)
            == (CHAINS.get(members[code], ()) if code in members else None)
        )
        assert (code in compact) == (code in members)
    assert sorted(compact) == sorted(members)


def test_a_code_that_is_a_prefix_of_another_is_told_apart():
    members = {"12": "A", "123": "B", "1234": "A1", "2": "A2"}
    compact = ExpectedChains(members, CHAINS, compact_from=0)
    assert [compact.get(c) for c in ("1", "12", "123", "1234", "12345", "2", "3")] == [
        None, (0,), (3,), (1, 0), None, (2, 0), None,
    ]  # fmt: skip


def test_an_empty_audience_expects_nobody():
    compact = ExpectedChains({}, CHAINS, compact_from=0)
    assert compact.get("1") is None and len(compact) == 0 and list(compact) == []
