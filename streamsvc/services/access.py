"""Scope lookups for every request: the unit tree, cached per roster version, and the
sessions a caller may see.

The tree is read again only when the `units_version` setting moved (a unit import on any
instance bumps it in the same transaction), so a request costs one primary-key read, and
every instance sees a moved unit at its next request.
"""

from __future__ import annotations

from streamsvc.domain.models import Session, Unit
from streamsvc.domain.policy import Caller, Principal, Scope, UnitTree, session_hidden
from streamsvc.errors import Forbidden
from streamsvc.ports import Store

__all__ = ["UNITS_VERSION", "AccessService"]

UNITS_VERSION = "units_version"


class AccessService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._version: str | None = None
        self._tree: UnitTree | None = None
        self._units: dict[str, Unit] = {}

    async def tree(self) -> UnitTree:
        version = await self.store.get_setting(UNITS_VERSION)
        if self._tree is None or version != self._version:
            units = await self.store.list_units()
            self._units = {u.code: u for u in units}
            self._tree = UnitTree(units)
            self._version = version
        return self._tree

    async def units(self) -> dict[str, Unit]:
        """Every unit by code, as of the cached tree."""
        await self.tree()
        return self._units

    async def caller(
        self, who: Principal, address: str | None = None, *, unit: str | None = None
    ) -> Caller:
        """The caller with its scope; `unit` narrows it to a subtree inside it (a monitor
        watching one province), and must lie in it."""
        tree = await self.tree()
        scope = self._scope(who.unit, tree)
        if unit is not None:
            if not scope.covers(unit) or unit not in tree:
                raise Forbidden(f"unit {unit} is outside your scope")
            scope = self._scope(unit, tree)
        return Caller(who, scope, address)

    @staticmethod
    def _scope(root: str | None, tree: UnitTree) -> Scope:
        """The subtree of `root`; the tree's one root is the whole tree (sites with no unit
        and entries about no unit included), as the admin token is."""
        if root is not None and tree.is_whole(root):
            return Scope(None, tree)
        return Scope(root, tree)

    async def audience(self, session: Session) -> tuple[str, ...]:
        """Who the session is for, for scope: a make-up session of the members excused at
        another has that session's audience."""
        seen: set[int] = set()
        while not session.audience and session.makeup_for is not None:
            if session.makeup_for in seen:
                break
            seen.add(session.makeup_for)
            original = await self.store.get_session(session.makeup_for)
            if original is None:
                break
            session = original
        return session.audience

    async def session(
        self, caller: Caller, session_id: int, need: str = "viewer", *, whole_session: bool = False
    ) -> Session:
        """The session, if the caller may see it (else the very answer of an unknown session)
        and has the role (`need`) for what it asks."""
        session = await self.store.get_session(session_id)
        if session is None:
            raise session_hidden(session_id)
        caller.allow(
            need,
            session=session,
            audience=await self.audience(session),
            whole_session=whole_session,
        )
        return session

    async def visible(self, caller: Caller, sessions: list[Session]) -> list[Session]:
        """The sessions whose audience meets the caller's scope."""
        if caller.scope.whole:
            return sessions
        return [s for s in sessions if caller.scope.meets(await self.audience(s))]
