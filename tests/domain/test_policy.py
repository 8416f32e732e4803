"""The policy as tables: roles x what is needed x where, with the unit tree handed in.

The tree: province P with districts D1 (cells C1a, C1b) and D2 (cell C2a), and a second root
X with no parent (a unit imported before its province was). No server, no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamsvc.domain.models import Member, Session, Unit, User
from streamsvc.domain.policy import (
    ADMIN_TOKEN,
    Caller,
    Principal,
    Scope,
    UnitTree,
    authorize,
    can_manage_user,
    members_outside,
    rows_outside,
    session_hidden,
    units_outside,
)
from streamsvc.errors import Forbidden, NotFound

UNITS = [
    Unit("P", "Tỉnh ủy", None),
    Unit("D1", "Huyện ủy 1", "P"),
    Unit("C1a", "Chi bộ 1a", "D1"),
    Unit("C1b", "Chi bộ 1b", "D1"),
    Unit("D2", "Huyện ủy 2", "P"),
    Unit("C2a", "Chi bộ 2a", "D2"),
    Unit("X", "Đơn vị lẻ", None),
]
TREE = UnitTree(UNITS)
EXISTING = {u.code: u for u in UNITS}
T0 = datetime(2026, 5, 22, 0, 30, tzinfo=UTC)


def scope(root: str | None) -> Scope:
    return Scope(root, TREE)


def user(login: str, unit: str, role: str) -> User:
    return User(login=login, full_name=login.title(), unit=unit, role=role)


def as_user(login: str, unit: str, role: str) -> Principal:
    return Principal.of_user(user(login, unit, role), token_hash="h")


def session(audience: tuple[str, ...], sid: int = 7) -> Session:
    return Session(sid, "Nghị quyết", T0, T0, audience)


def outcome(call) -> str:
    """ "ok", "404 <code>" or "403 <code>": what the handler would answer."""
    try:
        call()
    except NotFound as exc:
        return f"404 {exc.code}"
    except Forbidden as exc:
        return f"403 {exc.code}"
    return "ok"


# -- the tree -----------------------------------------------------------------------------


def test_tree_answers_inside_questions_by_walking_up():
    assert TREE.within("C1a", "P") and TREE.within("C1a", "D1") and TREE.within("D1", "D1")
    assert not TREE.within("D1", "C1a")
    assert not TREE.within("C2a", "D1")
    assert not TREE.within("X", "P") and TREE.within("X", "X")
    assert not TREE.within("nowhere", "P")
    assert TREE.lineage("C1a") == ["C1a", "D1", "P"]
    assert TREE.subtree("D1") == {"D1", "C1a", "C1b"}
    assert TREE.subtree("nowhere") == frozenset()
    assert TREE.common_ancestor(["C1a", "C1b"]) == "D1"
    assert TREE.common_ancestor(["C1a", "C2a"]) == "P"
    assert TREE.common_ancestor(["C1a", "X"]) is None


def test_a_cycle_in_bad_data_ends_the_walk():
    tree = UnitTree([Unit("A", "a", "B"), Unit("B", "b", "A")])
    assert not tree.within("A", "Z")
    assert tree.lineage("A") == ["A", "B"]
    assert tree.subtree("A") == {"A", "B"}


# -- Scope ---------------------------------------------------------------------------------

COVERS = [
    # root, unit, covered
    (None, "C1a", True),
    (None, None, True),  # a site with no unit: the whole tree only
    (None, "X", True),
    ("P", "C2a", True),
    ("P", "X", False),  # a unit with no parent is no one's subtree but its own
    ("P", None, False),
    ("D1", "D1", True),
    ("D1", "C1b", True),
    ("D1", "P", False),
    ("D1", "D2", False),
    ("D1", "C2a", False),
    ("D1", None, False),
    ("D1", "nowhere", False),
    ("C1a", "C1b", False),
    ("X", "X", True),
    ("X", "P", False),
]


@pytest.mark.parametrize(("root", "unit", "covered"), COVERS)
def test_scope_covers(root, unit, covered):
    assert scope(root).covers(unit) is covered


AUDIENCES = [
    # root, audience, meets (visible), holds (may create or close it)
    (None, ("P",), True, True),
    (None, (), True, True),
    ("D1", ("P",), True, False),  # the whole tree: the district takes part, does not own it
    ("D1", ("D1",), True, True),
    ("D1", ("C1a",), True, True),  # below
    ("D1", ("C1a", "C1b"), True, True),
    ("D1", ("D2",), False, False),  # disjoint
    ("D1", ("C2a",), False, False),
    ("D1", ("C1a", "D2"), True, False),  # partly inside
    ("D1", ("X",), False, False),
    ("D1", (), False, False),  # an empty audience belongs to the whole tree
    ("C1a", ("D1",), True, False),  # above
    ("C1a", ("C1b",), False, False),  # a sibling
    ("X", ("X",), True, True),
    ("X", ("P",), False, False),
    ("P", ("X",), False, False),
]


@pytest.mark.parametrize(("root", "audience", "meets", "holds"), AUDIENCES)
def test_scope_meets_and_holds(root, audience, meets, holds):
    assert scope(root).meets(audience) is meets
    assert scope(root).holds(audience) is holds


def test_scope_codes():
    assert scope(None).codes() is None
    assert scope("D1").codes() == {"D1", "C1a", "C1b"}


# -- authorize -------------------------------------------------------------------------------

ROLE_TABLE = [
    # role, need, outcome
    ("viewer", "viewer", "ok"),
    ("viewer", "organizer", "403 forbidden"),
    ("viewer", "admin", "403 forbidden"),
    ("organizer", "viewer", "ok"),
    ("organizer", "organizer", "ok"),
    ("organizer", "admin", "403 forbidden"),
    ("admin", "viewer", "ok"),
    ("admin", "organizer", "ok"),
    ("admin", "admin", "ok"),
]


@pytest.mark.parametrize(("role", "need", "expected"), ROLE_TABLE)
def test_authorize_by_role(role, need, expected):
    who = as_user("u", "D1", role)
    assert outcome(lambda: authorize(who, need, scope("D1"))) == expected


SESSION_TABLE = [
    # role, audience, need, whole_session, outcome
    # seeing a session: it must meet the scope, whatever the role; else it is not there
    ("viewer", ("P",), "viewer", False, "ok"),
    ("viewer", ("D1",), "viewer", False, "ok"),
    ("viewer", ("C1a",), "viewer", False, "ok"),
    ("viewer", ("D2",), "viewer", False, "404 unknown_session"),
    ("admin", ("D2",), "viewer", False, "404 unknown_session"),
    ("admin", ("X",), "viewer", False, "404 unknown_session"),
    # acting on a hidden session is 404 before the role is looked at
    ("viewer", ("D2",), "organizer", True, "404 unknown_session"),
    # acting on a visible session beyond the role: 403
    ("viewer", ("D1",), "organizer", False, "403 forbidden"),
    ("viewer", ("D1",), "organizer", True, "403 forbidden"),
    ("organizer", ("D1",), "organizer", False, "ok"),
    ("organizer", ("P",), "organizer", False, "ok"),  # e.g. a site of D1 at the province's
    # closing (whole_session): the audience must lie inside the scope
    ("organizer", ("D1",), "organizer", True, "ok"),
    ("organizer", ("C1a", "C1b"), "organizer", True, "ok"),
    ("organizer", ("P",), "organizer", True, "403 forbidden"),
    ("organizer", ("C1a", "D2"), "organizer", True, "403 forbidden"),
    ("admin", ("P",), "organizer", True, "403 forbidden"),
    ("admin", ("D1",), "admin", True, "ok"),
]


@pytest.mark.parametrize(("role", "audience", "need", "whole", "expected"), SESSION_TABLE)
def test_authorize_a_session(role, audience, need, whole, expected):
    who = as_user("u", "D1", role)
    call = lambda: authorize(  # noqa: E731
        who, need, scope("D1"), session=session(audience), whole_session=whole
    )
    assert outcome(call) == expected


def test_the_effective_audience_decides_not_the_stored_one():
    """A make-up session of the excused stores no audience; its original's counts."""
    who = as_user("u", "D1", "organizer")
    makeup = session(())
    assert outcome(lambda: authorize(who, "viewer", scope("D1"), session=makeup)) == (
        "404 unknown_session"
    )
    assert (
        outcome(
            lambda: authorize(
                who, "organizer", scope("D1"), session=makeup, audience=("D1",), whole_session=True
            )
        )
        == "ok"
    )


UNITS_TABLE = [
    # scope root, units, outcome
    (None, ["C1a", None, "X"], "ok"),
    ("D1", ["C1a", "D1"], "ok"),
    ("D1", ["C1a", "C2a"], "403 forbidden"),
    ("D1", [None], "403 forbidden"),  # a site with no unit needs the whole tree
    ("D1", ["P"], "403 forbidden"),
    ("D1", [], "ok"),
]


@pytest.mark.parametrize(("root", "units", "expected"), UNITS_TABLE)
def test_authorize_units(root, units, expected):
    who = as_user("u", root or "P", "organizer")
    assert outcome(lambda: authorize(who, "organizer", scope(root), units=units)) == expected


@pytest.mark.parametrize("need", ["viewer", "organizer", "admin"])
@pytest.mark.parametrize("audience", [("P",), ("D2",)])
def test_a_site_token_is_refused_everywhere(need, audience):
    site = Principal.of_site(12)
    assert site.actor == "site:12"
    call = lambda: authorize(site, need, scope(None), session=session(audience))  # noqa: E731
    assert outcome(call) == "403 forbidden"


def test_the_admin_token_is_an_admin_of_the_whole_tree():
    token = Principal.admin_token()
    assert (token.actor, token.role, token.unit) == (ADMIN_TOKEN, "admin", None)
    for audience in (("P",), ("X",), ()):
        call = lambda a=audience: authorize(  # noqa: E731
            token, "admin", scope(None), session=session(a), whole_session=True, units=[None]
        )
        assert outcome(call) == "ok"


def test_a_hidden_session_reads_exactly_as_an_unknown_one():
    hidden = session_hidden(41)
    assert (
        hidden.to_json() == NotFound("session 41 does not exist", code="unknown_session").to_json()
    )
    with pytest.raises(NotFound) as caught:
        authorize(as_user("u", "D1", "admin"), "viewer", scope("D1"), session=session(("D2",), 41))
    assert caught.value.to_json() == hidden.to_json()


# -- Caller ----------------------------------------------------------------------------------


def test_caller_allows_as_authorize_does_and_writes_entries_about_its_scope():
    caller = Caller(as_user("org", "D1", "organizer"), scope("D1"), "10.0.0.9")
    caller.allow("organizer", session=session(("C1a",)), whole_session=True, units=["C1b"])
    with pytest.raises(Forbidden):
        caller.allow("admin")
    entry = caller.entry("site_created", T0, session_id=7, detail="Hội trường")
    assert (entry.actor, entry.unit, entry.address, entry.session_id) == (
        "org",
        "D1",
        "10.0.0.9",
        7,
    )
    assert caller.entry("site_created", T0, unit="C1a").unit == "C1a"
    operator = Caller.operator()
    assert operator.scope.whole and operator.who.role == "admin"
    operator.allow("admin", units=[None])


# -- imports ---------------------------------------------------------------------------------


def _rows(errors: list[dict[str, object]]) -> list[object]:
    return [e["row"] for e in errors]


UNIT_IMPORTS = [
    # scope root, upload, rows refused
    pytest.param(None, [Unit("N", "n", None), Unit("D1", "d1", "D2")], [], id="whole-tree"),
    pytest.param("D1", [Unit("N1", "n1", "D1")], [], id="new-under-the-root"),
    pytest.param("D1", [Unit("N1", "n1", "C1a")], [], id="new-under-a-cell"),
    pytest.param(
        "D1",
        [Unit("N2", "n2", "N1"), Unit("N1", "n1", "C1a"), Unit("N3", "n3", "N2")],
        [],
        id="a-chain-inside-the-upload-in-any-order",
    ),
    pytest.param(
        "D1",
        [Unit("M2", "m2", "M1"), Unit("M1", "m1", "D2"), Unit("N1", "n1", "D1")],
        [1, 2],
        id="a-chain-hanging-outside",
    ),
    pytest.param("D1", [Unit("N1", "n1", None)], [1], id="a-new-root"),
    pytest.param("D1", [Unit("N1", "n1", "P")], [1], id="new-under-the-parent-of-the-root"),
    pytest.param("D1", [Unit("D1", "renamed", "P")], [], id="renaming-the-root"),
    pytest.param("D1", [Unit("D1", "d1", "D2")], [1], id="moving-the-root"),
    pytest.param("D1", [Unit("D1", "d1", None)], [1], id="moving-the-root-to-the-top"),
    pytest.param("D1", [Unit("D1", "d1", "C1a")], [1], id="moving-the-root-below-itself"),
    pytest.param("D1", [Unit("C1a", "c1a", "C1b")], [], id="moving-inside"),
    pytest.param("D1", [Unit("C1a", "c1a", "D2")], [1], id="moving-a-cell-out"),
    pytest.param("D1", [Unit("C2a", "c2a", "D1")], [1], id="taking-a-unit-in"),
    pytest.param("D1", [Unit("D2", "renamed", "P")], [1], id="renaming-an-outside-unit"),
    pytest.param("D1", [Unit("P", "renamed", None)], [1], id="renaming-the-province"),
    pytest.param(
        "D1",
        [Unit("C1a", "c1a", "D2"), Unit("N1", "n1", "C1a")],
        [1, 2],
        id="new-under-a-unit-moved-out-in-the-same-upload",
    ),
    pytest.param(
        "D1",
        [Unit("N1", "n1", "N2"), Unit("N2", "n2", "N1")],
        [1, 2],
        id="a-cycle-of-new-units-ends",
    ),
    pytest.param(
        "X", [Unit("X", "renamed", None), Unit("N", "n", "X")], [], id="a-parentless-root"
    ),
]


@pytest.mark.parametrize(("root", "upload", "refused"), UNIT_IMPORTS)
def test_units_outside(root, upload, refused):
    errors = units_outside(scope(root), upload, EXISTING)
    assert _rows(errors) == refused
    assert all("outside your scope" in str(e["error"]) for e in errors)


MEMBERS = {
    "m-c1a": Member("m-c1a", "Nguyễn Văn An", "C1a"),
    "m-c2a": Member("m-c2a", "Lý Văn Bình", "C2a"),
}

MEMBER_IMPORTS = [
    # scope root, upload, rows refused
    pytest.param(None, [Member("m-c1a", "a", "X"), Member("n", "n", "C2a")], [], id="whole"),
    pytest.param("D1", [Member("n", "n", "C1a"), Member("m", "m", "D1")], [], id="new-inside"),
    pytest.param("D1", [Member("n", "n", "C1a"), Member("m", "m", "C2a")], [2], id="new-outside"),
    pytest.param("D1", [Member("m-c1a", "renamed", "C1a")], [], id="renaming-inside"),
    pytest.param("D1", [Member("m-c1a", "a", "C1b")], [], id="moving-inside"),
    pytest.param("D1", [Member("m-c1a", "a", "D2")], [1], id="moving-out"),
    pytest.param("D1", [Member("m-c2a", "b", "C1a")], [1], id="taking-a-member-in"),
    pytest.param("D1", [Member("m-c2a", "renamed", "C2a")], [1], id="renaming-outside"),
]


@pytest.mark.parametrize(("root", "upload", "refused"), MEMBER_IMPORTS)
def test_members_outside(root, upload, refused):
    assert _rows(members_outside(scope(root), upload, MEMBERS)) == refused


def test_rows_outside_lists_every_row_from_one():
    errors = rows_outside(scope("D1"), ["C1a", None, "D2", "D1", "nowhere"])
    assert errors == [
        {"row": 2, "error": "unit None is outside your scope"},
        {"row": 3, "error": "unit D2 is outside your scope"},
        {"row": 5, "error": "unit nowhere is outside your scope"},
    ]
    assert rows_outside(scope(None), [None, "X"]) == []


# -- users ---------------------------------------------------------------------------------

ADMIN_P = as_user("admin-p", "P", "admin")
ADMIN_D1 = as_user("admin-d1", "D1", "admin")
ORG_D1 = as_user("org-d1", "D1", "organizer")
VIEWER_D1 = as_user("viewer-d1", "D1", "viewer")
ORG_C1A = as_user("org-c1a", "C1a", "organizer")
ADMIN_C1A = as_user("admin-c1a", "C1a", "admin")


def _creating(target: User) -> dict[str, object]:
    return {"unit": target.unit, "role": target.role}


USER_TABLE = [
    # who, target, changes (None: creating target), outcome
    pytest.param(ADMIN_P, user("n", "D1", "admin"), None, "ok", id="province-admin-makes-admin"),
    pytest.param(ADMIN_D1, user("n", "C1a", "admin"), None, "ok", id="district-admin-in-scope"),
    pytest.param(ADMIN_D1, user("n", "P", "viewer"), None, "403", id="district-admin-at-province"),
    pytest.param(ADMIN_D1, user("n", "D2", "viewer"), None, "403", id="district-admin-elsewhere"),
    pytest.param(ORG_D1, user("n", "D1", "admin"), None, "403", id="organizer-makes-admin"),
    pytest.param(ORG_D1, user("n", "C1a", "viewer"), None, "403", id="organizer-makes-viewer"),
    pytest.param(VIEWER_D1, user("n", "D1", "viewer"), None, "403", id="viewer-makes-viewer"),
    # changing someone else
    pytest.param(ADMIN_D1, user("v", "C1a", "viewer"), {"role": "admin"}, "ok", id="promote-in"),
    pytest.param(ADMIN_D1, user("v", "C1a", "viewer"), {"unit": "C1b"}, "ok", id="move-inside"),
    pytest.param(ADMIN_D1, user("v", "C1a", "viewer"), {"unit": "D2"}, "403", id="move-out"),
    pytest.param(ADMIN_D1, user("v", "C1a", "viewer"), {"unit": "P"}, "403", id="move-up-out"),
    pytest.param(ADMIN_D1, user("v", "C2a", "viewer"), {"unit": "C1a"}, "403", id="take-in"),
    pytest.param(ADMIN_D1, user("v", "P", "viewer"), {"active": False}, "403", id="above"),
    pytest.param(ORG_D1, user("v", "C1a", "viewer"), {"password": "x" * 10}, "403", id="org-pw"),
    pytest.param(ORG_D1, user("v", "C1a", "viewer"), {"active": False}, "403", id="org-deact"),
    # changing oneself: name and password only, unless an admin acting inside their scope
    pytest.param(ORG_D1, ORG_D1.user, {"full_name": "Tên mới"}, "ok", id="self-name"),
    pytest.param(VIEWER_D1, VIEWER_D1.user, {"password": "y" * 12}, "ok", id="self-password"),
    pytest.param(
        ORG_C1A, ORG_C1A.user, {"full_name": "a", "password": "z" * 10}, "ok", id="self-both"
    ),
    pytest.param(ORG_C1A, ORG_C1A.user, {"unit": "D1"}, "403", id="self-up-the-tree"),
    pytest.param(ORG_D1, ORG_D1.user, {"role": "admin"}, "403", id="self-role"),
    pytest.param(VIEWER_D1, VIEWER_D1.user, {"role": "organizer"}, "403", id="viewer-self-role"),
    pytest.param(VIEWER_D1, VIEWER_D1.user, {"active": True}, "403", id="viewer-self-active"),
    pytest.param(ADMIN_C1A, ADMIN_C1A.user, {"unit": "D1"}, "403", id="admin-self-up-the-tree"),
    pytest.param(ADMIN_D1, ADMIN_D1.user, {"unit": "P"}, "403", id="district-admin-self-up"),
    pytest.param(ADMIN_D1, ADMIN_D1.user, {"unit": "C1a"}, "ok", id="admin-self-down"),
    # the v1 admin token and a site token
    pytest.param(Principal.admin_token(), user("n", "X", "admin"), None, "ok", id="admin-token"),
    pytest.param(Principal.of_site(3), user("n", "C1a", "viewer"), None, "403", id="site-token"),
    pytest.param(
        Principal.of_site(3),
        user("n", "C1a", "viewer"),
        {"password": "p" * 10},
        "403",
        id="site-pw",
    ),
]


@pytest.mark.parametrize(("who", "target", "changes", "expected"), USER_TABLE)
def test_can_manage_user(who, target, changes, expected):
    root = who.unit
    changes = _creating(target) if changes is None else changes
    got = outcome(lambda: can_manage_user(who, scope(root), target, changes))
    assert got == ("ok" if expected == "ok" else "403 forbidden")


def test_a_deep_chain_of_new_units_is_walked_not_recursed():
    """Thousands of new units, each under the one before (listed children first): inside
    when the chain hangs under the scope, every row outside when it hangs elsewhere."""
    chain = [Unit(f"N{i}", "n", f"N{i - 1}" if i else "C1a") for i in range(5000)][::-1]
    assert units_outside(scope("D1"), chain, EXISTING) == []
    hanging = [Unit(u.code, u.name, "D2" if u.parent == "C1a" else u.parent) for u in chain]
    assert len(units_outside(scope("D1"), hanging, EXISTING)) == 5000


def test_only_the_one_root_of_a_tree_is_the_whole_tree():
    """A user at the province of a one-province roster answers for everything (sites with no
    unit too); with a second root beside it, the province is a subtree like any other."""
    one = UnitTree(u for u in UNITS if u.code != "X")
    assert one.is_whole("P") and not one.is_whole("D1") and not one.is_whole("nowhere")
    assert not TREE.is_whole("P") and not TREE.is_whole("X")
