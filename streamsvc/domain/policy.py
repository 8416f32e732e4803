"""Who may do what, where: roles and scope, decided here and nowhere else.

Each level of the party organisation runs its own part (DOMAIN.md): a user's scope is the
subtree of their unit, and their role says what they may do inside it. Handlers ask
`authorize()` one question per request; the answer is to go on, `NotFound` (a session out of
sight looks exactly like one that does not exist) or `Forbidden`.

Pure: the unit tree is handed in, so the table of endpoints x roles x scopes is tested
without a server, and the same rules hold on every instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from streamsvc.domain.models import ROLES, AuditEntry, Member, Session, Unit, User
from streamsvc.errors import Forbidden, NotFound

__all__ = [
    "ADMIN_TOKEN",
    "RANK",
    "Caller",
    "Principal",
    "Scope",
    "UnitTree",
    "authorize",
    "can_manage_user",
    "members_outside",
    "rows_outside",
    "session_hidden",
    "units_outside",
]

#: Higher may do everything lower may.
RANK: Mapping[str, int] = {role: rank for rank, role in enumerate(ROLES)}

#: The actor name of the v1 admin token in the audit log.
ADMIN_TOKEN = "admin-token"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in user, the v1 admin token (an admin of the whole tree), or a
    site's coordinator token (check-ins for that site only, nothing here)."""

    actor: str
    role: str | None
    unit: str | None
    site_id: int | None = None
    token_hash: str | None = None
    user: User | None = None

    @classmethod
    def admin_token(cls) -> Principal:
        return cls(actor=ADMIN_TOKEN, role="admin", unit=None)

    @classmethod
    def of_user(cls, user: User, token_hash: str | None = None) -> Principal:
        return cls(
            actor=user.login, role=user.role, unit=user.unit, token_hash=token_hash, user=user
        )

    @classmethod
    def of_site(cls, site_id: int) -> Principal:
        return cls(actor=f"site:{site_id}", role=None, unit=None, site_id=site_id)


class UnitTree:
    """The unit tree by parent links, for "is this unit inside that subtree" questions.

    Built once per change of the roster (the cache is the caller's); each question walks up
    from a unit, so it costs the depth of the tree (five levels in practice) and no subtree
    is ever listed unless asked for."""

    __slots__ = ("_children", "_parents", "_roots")

    def __init__(self, units: Iterable[Unit]) -> None:
        self._parents: dict[str, str | None] = {u.code: u.parent for u in units}
        self._children: dict[str, list[str]] | None = None
        self._roots: list[str] | None = None

    def __contains__(self, code: object) -> bool:
        return code in self._parents

    def parent(self, code: str) -> str | None:
        return self._parents.get(code)

    def within(self, code: str, root: str) -> bool:
        """Whether `code` is `root` or lies below it (false for an unknown unit)."""
        if code not in self._parents:
            return False
        seen = 0
        current: str | None = code
        while current is not None and seen <= len(self._parents):
            if current == root:
                return True
            current = self._parents.get(current)
            seen += 1  # a cycle in bad data ends the walk
        return False

    def is_whole(self, code: str) -> bool:
        """Whether `code` is the tree's one root, so that its subtree is the whole tree."""
        if self._roots is None:
            self._roots = [c for c, p in self._parents.items() if p is None or p not in self]
        return self._roots == [code]

    def lineage(self, code: str) -> list[str]:
        """The unit and its ancestors, nearest first."""
        out: list[str] = []
        current: str | None = code
        while current is not None and current in self._parents and current not in out:
            out.append(current)
            current = self._parents[current]
        return out

    def common_ancestor(self, codes: Iterable[str]) -> str | None:
        """The nearest unit whose subtree holds them all (None: only the whole tree does)."""
        common: list[str] | None = None
        for code in codes:
            line = self.lineage(code)
            if common is None:
                common = line
            else:
                ancestors = set(line)
                common = [c for c in common if c in ancestors]
            if not common:
                return None
        return common[0] if common else None

    def _kids(self) -> dict[str, list[str]]:
        if self._children is None:
            children: dict[str, list[str]] = {}
            for code, parent in self._parents.items():
                if parent is not None and parent != code:
                    children.setdefault(parent, []).append(code)
            self._children = children
        return self._children

    def children(self, code: str) -> list[str]:
        """The units right below `code`, so that a walk down may stop at a level."""
        return list(self._kids().get(code, ()))

    def subtree(self, root: str) -> frozenset[str]:
        """Every code in the subtree of `root` (empty for an unknown unit)."""
        if root not in self._parents:
            return frozenset()
        kids = self._kids()
        out = {root}
        stack = [root]
        while stack:
            for kid in kids.get(stack.pop(), ()):
                if kid not in out:
                    out.add(kid)
                    stack.append(kid)
        return frozenset(out)


@dataclass(frozen=True, slots=True)
class Scope:
    """The subtree a principal answers for; `root` None is the whole tree."""

    root: str | None
    tree: UnitTree

    @property
    def whole(self) -> bool:
        return self.root is None

    def covers(self, unit: str | None) -> bool:
        """Whether a unit lies in the scope. A site or row with no unit belongs to the whole
        tree only."""
        if self.root is None:
            return True
        return unit is not None and self.tree.within(unit, self.root)

    def meets(self, audience: Sequence[str]) -> bool:
        """Whether a session with this audience concerns the scope: an audience unit lies in
        it, or the scope lies inside an audience unit's subtree."""
        if self.root is None:
            return True
        root = self.root
        return any(self.tree.within(a, root) or self.tree.within(root, a) for a in audience)

    def holds(self, audience: Sequence[str]) -> bool:
        """Whether the whole audience lies inside the scope (an empty one: whole tree only)."""
        if self.root is None:
            return True
        return bool(audience) and all(self.covers(a) for a in audience)

    def codes(self) -> frozenset[str] | None:
        """Every unit code in the scope, or None for the whole tree (no filter)."""
        return None if self.root is None else self.tree.subtree(self.root)


def session_hidden(session_id: int) -> NotFound:
    """The answer for a session out of sight: word for word that of an unknown session."""
    return NotFound(f"session {session_id} does not exist", code="unknown_session")


def authorize(
    who: Principal,
    need: str,
    scope: Scope,
    *,
    session: Session | None = None,
    audience: Sequence[str] | None = None,
    whole_session: bool = False,
    units: Iterable[str | None] = (),
) -> None:
    """Let the request go on, or raise.

    `need` is the least role; `session` (with its effective `audience`, a make-up session's
    being that of the session it makes up) must meet the scope, else it is hidden (404);
    `whole_session` asks that the audience lie entirely inside the scope (creating or closing
    a session); every unit in `units` must lie inside the scope (a site's, a member's).
    """
    if who.site_id is not None or who.role is None:
        raise Forbidden("a site token is for check-ins at its site only; sign in here")
    if session is not None:
        seen = session.audience if audience is None else audience
        if not scope.meets(seen):
            raise session_hidden(session.id)
    if RANK[who.role] < RANK[need]:
        raise Forbidden(f"this needs the {need} role; you are {who.role}")
    if session is not None and whole_session:
        seen = session.audience if audience is None else audience
        if not scope.holds(seen):
            raise Forbidden("the session's audience reaches outside your scope")
    for unit in units:
        if not scope.covers(unit):
            where = f"unit {unit}" if unit is not None else "a row with no unit"
            raise Forbidden(f"{where} is outside your scope")


def can_manage_user(
    who: Principal, scope: Scope, target: User, changes: Mapping[str, object]
) -> None:
    """Creating or changing a user. An admin manages users whose unit (before and after) lies
    in their scope; anyone may change their own full name and password, nothing else of
    themselves (so nobody moves up the tree or raises their own role)."""
    if who.site_id is not None or who.role is None:
        raise Forbidden("a site token is for check-ins at its site only; sign in here")
    own = who.user is not None and who.user.login == target.login
    if own and set(changes) <= {"full_name", "password"}:
        return
    if RANK[who.role] < RANK["admin"]:
        raise Forbidden("managing users needs the admin role")
    for unit in (target.unit, changes.get("unit", target.unit)):
        if not isinstance(unit, str) or not scope.covers(unit):
            raise Forbidden(f"unit {unit} is outside your scope")


@dataclass(frozen=True, slots=True)
class Caller:
    """A principal with its scope and address: what a service needs to decide a request and
    to write its audit entry."""

    who: Principal
    scope: Scope
    address: str | None = None

    @classmethod
    def operator(cls, actor: str = "cli") -> Caller:
        """Whoever runs the command line on the server: an admin of the whole tree."""
        return cls(Principal(actor=actor, role="admin", unit=None), Scope(None, UnitTree(())))

    def allow(
        self,
        need: str,
        *,
        session: Session | None = None,
        audience: Sequence[str] | None = None,
        whole_session: bool = False,
        units: Iterable[str | None] = (),
    ) -> None:
        """`authorize()` for this caller."""
        authorize(
            self.who,
            need,
            self.scope,
            session=session,
            audience=audience,
            whole_session=whole_session,
            units=units,
        )

    def entry(
        self,
        action: str,
        at: datetime,
        *,
        session_id: int | None = None,
        target: str | None = None,
        detail: str | None = None,
        unit: str | None = None,
    ) -> AuditEntry:
        """The audit entry of a change this caller makes; about `unit`, or the caller's own
        scope when the change names none."""
        return AuditEntry(
            at=at,
            actor=self.who.actor,
            action=action,
            session_id=session_id,
            target=target,
            detail=detail,
            address=self.address,
            unit=unit if unit is not None else self.scope.root,
        )


def rows_outside(scope: Scope, units: Iterable[str | None]) -> list[dict[str, object]]:
    """`{"row", "error"}` for every row of an import whose unit lies outside the scope (rows
    numbered from 1, as the imports' other errors are), so one answer lists them all."""
    return [
        {"row": row, "error": f"unit {unit} is outside your scope"}
        for row, unit in enumerate(units, start=1)
        if not scope.covers(unit)
    ]


def units_outside(
    scope: Scope, units: Sequence[Unit], existing: Mapping[str, Unit]
) -> list[dict[str, object]]:
    """Rows of a unit import that reach outside the scope: a unit placed under a parent
    outside it, an existing unit outside it, or the scope's own root moved (renaming it is
    fine). A new parent from the same upload counts as inside when it is itself inside."""
    if scope.whole:
        return []
    root = scope.root
    assert root is not None
    upload = {u.code: u for u in units}
    memo: dict[str, bool] = {}

    def decided(code: str) -> bool | None:
        """The answer for `code` on its own, or None when its parent decides."""
        unit = upload[code]
        if code == root:
            return code in existing and unit.parent == existing[code].parent
        if code in existing and not scope.covers(code):
            return False
        return None

    def inside(code: str | None) -> bool:
        # a walk up the upload, not recursion: a chain of thousands of new units is only
        # a deep tree, and must not end in a RecursionError (a 500)
        chain: dict[str, None] = {}  # ordered, and a cycle is found at once
        answer: bool | None = None
        while answer is None:
            if code is None or code in chain:
                answer = False  # a new root, or a cycle (validate_units reports it too)
            elif code in memo:
                answer = memo[code]
            elif code not in upload:
                answer = code in existing and scope.covers(code)
            else:
                chain[code] = None
                answer = decided(code)
                code = upload[code].parent
        for seen in chain:
            memo[seen] = answer
        return answer

    return [
        {"row": row, "error": f"unit {u.code} (parent {u.parent}) reaches outside your scope"}
        for row, u in enumerate(units, start=1)
        if not inside(u.code)
    ]


def members_outside(
    scope: Scope, members: Sequence[Member], existing: Mapping[str, Member]
) -> list[dict[str, object]]:
    """Rows of a member import outside the scope: into a unit outside it, or taking a member
    who is now outside it."""
    out: list[dict[str, object]] = []
    for row, member in enumerate(members, start=1):
        before = existing.get(member.code)
        if not scope.covers(member.unit):
            out.append({"row": row, "error": f"unit {member.unit} is outside your scope"})
        elif before is not None and not scope.covers(before.unit):
            out.append(
                {"row": row, "error": f"member {member.code} belongs to a unit outside your scope"}
            )
    return out
