"""Who is expected at a session, as the live counts look them up: each expected member's
chain of unit indexes (`LiveState`).

A dict from member code to chain costs ~150 bytes a member (the code's str object and the
dict's slot): 300 MB for the national day's 2,000,000 members, held by every instance for
the whole day. From `COMPACT_FROM` members on, the codes are kept instead as one sorted bytes
string of fixed-width records, with the number of each member's chain in an array beside it
(~14 bytes a member with 10-character codes), and found by binary search: a few
microseconds per check-in instead of a tenth of one. A province's session keeps the dict.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping

__all__ = ["COMPACT_FROM", "ExpectedChains"]

#: Expected members from which the compact form is used.
COMPACT_FROM = 200_000

Chain = tuple[int, ...]


class ExpectedChains:
    """member code -> chain (a tuple of unit indexes, shared by all members of a unit; `()`
    for a member whose unit lies outside the audience subtrees); None: not expected."""

    __slots__ = ("_blob", "_chain_of", "_chains", "_count", "_dict", "_width")

    def __init__(
        self,
        members: Mapping[str, str],
        unit_chains: Mapping[str, Chain],
        *,
        compact_from: int | None = None,
    ) -> None:
        """`members`: every expected member's code -> the code of their unit; `unit_chains`:
        each unit in the audience subtrees -> its chain."""
        threshold = COMPACT_FROM if compact_from is None else compact_from
        self._count = len(members)
        self._dict: dict[str, Chain] | None = None
        self._blob = b""
        self._width = 0
        self._chains: list[Chain] = []
        self._chain_of = array("i")
        if self._count < threshold:
            self._dict = {m: unit_chains.get(u, ()) for m, u in members.items()}
            return
        codes = list(members)
        width = max((len(c.encode()) for c in codes), default=1)
        keys = [c.encode().ljust(width, b"\0") for c in codes]
        order: range | list[int] = range(len(keys))
        if any(keys[i] >= keys[i + 1] for i in range(len(keys) - 1)):
            order = sorted(order, key=keys.__getitem__)
        self._blob = b"".join([keys[i] for i in order])
        del keys
        numbers: dict[str, int] = {}  # unit -> the number of its chain
        chain_of = self._chain_of
        for i in order:
            unit = members[codes[i]]
            number = numbers.get(unit)
            if number is None:
                number = numbers[unit] = len(self._chains)
                self._chains.append(unit_chains.get(unit, ()))
            chain_of.append(number)
        self._width = width

    @property
    def compact(self) -> bool:
        return self._dict is None

    def __len__(self) -> int:
        return self._count

    def __contains__(self, member: object) -> bool:
        return isinstance(member, str) and self.get(member) is not None

    def get(self, member: str) -> Chain | None:
        if self._dict is not None:
            return self._dict.get(member)
        key = member.encode()
        width = self._width
        if len(key) > width:
            return None
        key = key.ljust(width, b"\0")
        blob = self._blob
        lo, hi = 0, self._count
        while lo < hi:
            mid = (lo + hi) >> 1
            start = mid * width
            if blob[start : start + width] < key:
                lo = mid + 1
            else:
                hi = mid
        start = lo * width
        if lo < self._count and blob[start : start + width] == key:
            return self._chains[self._chain_of[lo]]
        return None

    def __iter__(self) -> Iterator[str]:
        """The codes (in code order when compact), for tests and rebuilding."""
        if self._dict is not None:
            yield from self._dict
            return
        width, blob = self._width, self._blob
        for i in range(self._count):
            yield blob[i * width : (i + 1) * width].rstrip(b"\0").decode()
