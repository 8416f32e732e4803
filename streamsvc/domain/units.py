"""The unit tree: subtrees and ancestors, computed from parent links."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streamsvc.domain.models import Unit

__all__ = ["children_of", "subtree"]


def children_of(units: Iterable[Unit]) -> dict[str, list[str]]:
    """Parent code -> child codes, sorted by code."""
    out: dict[str, list[str]] = {}
    for unit in units:
        if unit.parent is not None:
            out.setdefault(unit.parent, []).append(unit.code)
    for kids in out.values():
        kids.sort()
    return out


def subtree(units: Mapping[str, Unit], roots: Iterable[str]) -> list[str]:
    """Codes of the roots and everything below them, depth-first, children by code."""
    kids = children_of(units.values())
    out: list[str] = []
    seen: set[str] = set()
    stack = [r for r in sorted(set(roots), reverse=True) if r in units]
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        out.append(code)
        stack.extend(reversed(kids.get(code, [])))
    return out
