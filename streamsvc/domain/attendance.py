"""What a session's attendance is reconciled from, besides its two large streams.

The service loads a `Reconciliation` before any byte of an export goes out (so an unknown
session is still a 404), then streams the expected members and the events through `reconcile`.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

from streamsvc.domain.models import Evidence, Member, Session, Site, Unit
from streamsvc.domain.reconcile import Summary, SummaryTally

__all__ = ["EVIDENCE_CHUNK", "EvidenceWindow", "Reconciliation", "UnexpectedMembers"]

#: Expected members whose evidence is read at once while the pass goes.
EVIDENCE_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Everything about a session but its two large streams, loaded before any byte goes out.

    The excuses, the made-up members and the unexpected members are held in memory: they
    are a small part of a session (people with a reason, people at a make-up session,
    people who came without being expected), unlike the expected members and the events.
    So is the evidence handed in at the make-up sessions (by the few who attended one) and
    `evidence`, that of the unexpected members; the expected members' evidence, a row for
    nearly every member, is read a chunk at a time as the pass goes (`EvidenceWindow`).
    """

    session: Session
    sites: dict[int, Site]
    units: dict[str, Unit]
    excuses: dict[str, str]
    made_up: frozenset[str]
    unexpected: dict[str, Member]
    evidence: Mapping[str, Evidence] = field(default_factory=dict)
    makeup_evidence: Mapping[str, Evidence] = field(default_factory=dict)

    @property
    def unit_names(self) -> dict[str, str]:
        return {code: unit.name for code, unit in self.units.items()}

    @property
    def size(self) -> int:
        """How many records the pass yields: the expected members and the unexpected ones."""
        return self.session.expected + len(self.unexpected)

    def tally(self, scope: Container[str] | None = None) -> SummaryTally:
        """A tally over the audience subtrees (only their units in `scope`, when given); a
        make-up session that took its audience from the excused members has no audience
        units, so it tallies the whole tree instead and `by_unit` keeps only the units with
        someone expected."""
        roots = self.session.audience or sorted(
            code for code, unit in self.units.items() if unit.parent is None
        )
        return SummaryTally(self.units, roots, scope)

    def by_unit(self, tally: SummaryTally) -> list[tuple[Unit, Summary]]:
        rows = tally.by_unit()
        if self.session.audience:
            return rows
        return [(unit, summary) for unit, summary in rows if summary.expected]


class UnexpectedMembers(Mapping[str, Member]):
    """The unexpected members read before the pass, and any who turn up during it.

    Check-ins keep coming while a session is open (and late uploads after the close), so
    the event stream may hold an unexpected member the list read a moment earlier lacked;
    such a member is looked up (`lookup`, I/O left to the caller) when the merge meets them
    instead of failing the export.
    """

    def __init__(self, known: Mapping[str, Member], lookup: Callable[[str], Member | None]) -> None:
        self._known = dict(known)
        self._lookup = lookup

    def __getitem__(self, code: str) -> Member:
        member = self._known.get(code)
        if member is None:
            member = self._lookup(code)
            if member is None:
                raise KeyError(code)
            self._known[code] = member
        return member

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


class EvidenceWindow(dict[str, Evidence]):
    """The evidence `reconcile` looks members up in, holding only the current chunk of the
    expected members' (and the unexpected members', kept throughout).

    Nearly every member hands something in, so a whole session's evidence would make a
    national pass hold a row per member (400 MB at 1,000,000). `follow` passes the expected
    members through and, before each chunk of them, replaces the window's rows with theirs
    (`fetch`, I/O left to the caller). The merge asks for a member's evidence before it
    takes the next member, so a chunk's rows are never needed once the next chunk is read.
    A dict itself, so that each lookup stays a plain `dict.get`.
    """

    def __init__(
        self,
        kept: Mapping[str, Evidence],
        fetch: Callable[[Sequence[str]], Mapping[str, Evidence]],
        chunk: int = EVIDENCE_CHUNK,
    ) -> None:
        super().__init__(kept)
        self._kept = dict(kept)
        self._fetch = fetch
        self._chunk = chunk

    def keep(self, evidence: Mapping[str, Evidence]) -> None:
        """Hold these rows for the rest of the pass (an unexpected member found during it)."""
        self._kept.update(evidence)
        self.update(evidence)

    def follow(self, members: Iterable[Member]) -> Iterator[Member]:
        """The members, unchanged, with the window moved to each chunk before it passes."""
        source = iter(members)
        while chunk := list(islice(source, self._chunk)):
            fetched = self._fetch([member.code for member in chunk])
            self.clear()
            self.update(self._kept)
            self.update(fetched)
            yield from chunk
