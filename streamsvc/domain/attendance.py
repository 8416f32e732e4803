"""What a session's attendance is reconciled from, besides its two large streams.

The service loads a `Reconciliation` before any byte of an export goes out (so an unknown
session is still a 404), then streams the expected members and the events through `reconcile`.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass, field

from streamsvc.domain.models import Evidence, Member, Session, Site, Unit
from streamsvc.domain.reconcile import Summary, SummaryTally

__all__ = ["Reconciliation", "UnexpectedMembers"]


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Everything about a session but its two large streams, loaded before any byte goes out.

    The excuses, the made-up members and the unexpected members are held in memory: they
    are a small part of a session (people with a reason, people at a make-up session,
    people who came without being expected), unlike the expected members and the events.
    The evidence (this session's, and that handed in at its make-up sessions) is held the
    same way: a small row per member who handed something in, looked up as each record
    passes, so the pass itself still holds one record at a time.
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
