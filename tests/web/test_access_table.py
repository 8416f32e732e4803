"""Every endpoint x every role x inside and outside the scope, against a real server on both
stores (contract v2, "Accounts, roles and scope").

One roster and one set of users per store, made once (argon2 costs ~0.1 s a user and a
sign-in): province P with districts D1 (cells C1a, C1b) and D2 (cell C2a), and a second
province Q so that the province's admin has an outside too. Each principal asks about a
session inside its scope ("in"), one that concerns its scope but reaches past it ("above":
visible, and what is asked of it lies outside), and one out of sight ("out": 404 exactly as an
unknown session). The v1 admin token (the whole tree, so "in" only) and a site's coordinator
token (nothing here but its own session's check-ins) ask too. A refused change must change
nothing: sessions, users, units, members, sites and the audit log read the same before and
after. A route of /api/v1 without a row fails `test_the_table_has_a_row_for_every_route`.

Then /ws/monitor (the same scopes over the socket) and the bad-input list of the issue, each a
row: credentials, expired, revoked and deactivated sign-ins, tokens of the wrong kind,
escalations, and imports with one row outside the scope.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from conftest import ADMIN, create_pg_database, drop_pg_database, require_postgres

from streamsvc.config import Settings
from streamsvc.domain.models import Unit
from streamsvc.domain.policy import UnitTree
from streamsvc.services.tokens import hash_token, new_token
from streamsvc.storage import open_store

pytestmark = pytest.mark.asyncio(loop_scope="module")

PASSWORD = "mật-khẩu-đủ-dài-2026"
UNKNOWN_SID = 987654321

UNITS = [
    {"code": "P", "name": "Tỉnh ủy P", "parent": None},
    {"code": "D1", "name": "Huyện ủy D1", "parent": "P"},
    {"code": "C1a", "name": "Chi bộ C1a", "parent": "D1"},
    {"code": "C1b", "name": "Chi bộ C1b", "parent": "D1"},
    {"code": "D2", "name": "Huyện ủy D2", "parent": "P"},
    {"code": "C2a", "name": "Chi bộ C2a", "parent": "D2"},
    {"code": "Q", "name": "Tỉnh ủy Q", "parent": None},
]
MEMBERS = [
    {"code": "11", "full_name": "Nguyễn Văn An", "unit": "C1a"},
    {"code": "12", "full_name": "Hoàng Thị Đào", "unit": "C1b"},
    {"code": "21", "full_name": "Lý Văn Bình", "unit": "C2a"},
    {"code": "31", "full_name": "Ma Thị Hương", "unit": "Q"},
]
TREE = UnitTree(Unit(u["code"], u["name"], u["parent"]) for u in UNITS)


@dataclass(frozen=True)
class Who:
    """A principal and its world: the unit inside its scope, one outside, a member of each,
    and the audiences of a session that reaches past the scope and of one out of sight."""

    name: str
    login: str | None  # None: the v1 admin token, or a site's coordinator token
    role: str
    root: str | None
    inside: str
    outside: str | None = None
    member_in: str = "11"
    member_out: str | None = None
    above: tuple[str, ...] | None = None
    hidden: tuple[str, ...] | None = None

    def audience(self, where: str) -> tuple[str, ...]:
        found = {"in": (self.inside,), "above": self.above, "out": self.hidden}[where]
        assert found is not None
        return found

    def unit(self, where: str) -> str:
        """The unit asked about: inside for "in" and "out" (there the session alone is the
        reason), outside for "above"."""
        found = self.outside if where == "above" else self.inside
        assert found is not None
        return found

    def member(self, where: str) -> str:
        """A member expected at the session of `where`; outside the scope unless "in"."""
        found = self.member_in if where == "in" else self.member_out
        assert found is not None
        return found

    @property
    def user_out(self) -> str:
        return "target-q" if self.root == "P" else "target-d2"

    def covers(self, unit: str) -> bool:
        return self.root is None or TREE.within(unit, self.root)

    def outside_codes(self) -> set[str]:
        """The roster's own units that lie outside the scope (units made by the tests are
        left out: their place is not known here)."""
        return {u["code"] for u in UNITS if not self.covers(u["code"])}


def in_d1(name: str, role: str) -> Who:
    return Who(name, name, role, "D1", "D1", "D2", "11", "21", ("P",), ("D2",))


WHO = {
    w.name: w
    for w in (
        Who("token", None, "admin", None, "P"),
        Who("admin-p", "admin-p", "admin", "P", "P", "Q", "21", "31", ("P", "Q"), ("Q",)),
        in_d1("admin-d1", "admin"),
        in_d1("org-d1", "organizer"),
        in_d1("viewer-d1", "viewer"),
        Who("org-c1a", "org-c1a", "organizer", "C1a", "C1a", "C1b", "11", "12", ("D1",), ("C1b",)),
        # the coordinator token of a C1a site at the D1 session: its world is D1's
        Who("site", None, "site", "D1", "D1", "D2", "11", "21", ("P",), ("D2",)),
    )
}
#: Users to change and to look at, beside the principals themselves.
TARGETS = {"target-c1a": "C1a", "target-d2": "D2", "target-q": "Q"}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Answer:
    status: int
    body: Any
    text: str


class World:
    """The server of one store, its users' tokens, and the sessions and sites the table's
    cases ask about (the fixed ones made once, the ones a case changes made afresh)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, database: str) -> None:
        self.http, self.url, self.database = http, url, database
        self.tokens: dict[str, str] = {"token": ADMIN}
        self._sessions: dict[tuple[str, ...], int] = {}
        self._sites: dict[tuple[int, str], dict[str, Any]] = {}
        self._plan_sessions: dict[tuple[tuple[str, ...], str, str], int] = {}

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        query: dict[str, str] | None = None,
    ) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        sent: dict[str, Any] = {"json": body}
        if isinstance(body, str):  # a CSV upload
            sent = {"data": body.encode(), "headers": {**headers, "Content-Type": "text/csv"}}
        async with self.http.request(
            method, self.url + path, params=query, **{"headers": headers, **sent}
        ) as r:
            raw = await r.read()
            text = raw.decode("utf-8", "replace")
            parsed: Any = None
            if r.content_type == "application/json" and raw:
                parsed = json.loads(raw)
            return Answer(r.status, parsed, text)

    async def admin(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        """As the v1 admin token; the answer must be a success."""
        answer = await self.call(method, path, ADMIN, body, query or None)
        assert answer.status < 300, (method, path, answer.status, answer.text)
        return answer.body

    async def login(self, login: str) -> str:
        answer = await self.call(
            "POST", "/api/v1/auth/login", None, {"login": login, "password": PASSWORD}
        )
        assert answer.status == 200, answer.text
        return str(answer.body["token"])

    async def fresh_session(self, audience: tuple[str, ...], **fields: Any) -> int:
        now = datetime.now(UTC)
        body = {
            "title": "Học tập Nghị quyết " + "-".join(audience),
            "starts_at": iso(now - timedelta(minutes=10)),
            "ends_at": iso(now + timedelta(hours=2)),
            "audience": list(audience),
            **fields,
        }
        return int((await self.admin("POST", "/api/v1/sessions", body))["id"])

    async def plan_session(self, audience: tuple[str, ...], unit: str, use: str) -> int:
        """A session whose units at `unit`'s level owe an action plan (one per use: the
        plans recorded by one row are not what another row reads)."""
        key = (audience, unit, use)
        if key not in self._plan_sessions:
            rule = {"depth": len(TREE.lineage(unit)) - 1, "heads": True}
            self._plan_sessions[key] = await self.fresh_session(audience, plans=rule)
        return self._plan_sessions[key]

    async def session(self, audience: tuple[str, ...]) -> int:
        """The one fixed session of this audience (never closed or changed by a case)."""
        if audience not in self._sessions:
            self._sessions[audience] = await self.fresh_session(audience)
        return self._sessions[audience]

    def fixed_sessions(self) -> list[tuple[tuple[str, ...], int]]:
        return list(self._sessions.items())

    async def sites(self, sid: int, units: list[str | None]) -> None:
        """Sites of these units in one upload, remembered for `site()`."""
        rows = [{"name": f"Điểm {u}", "kind": "hall", "unit": u, "capacity": None} for u in units]
        made = await self.admin("POST", f"/api/v1/sessions/{sid}/sites", {"sites": rows})
        for site in made["sites"]:
            self._sites[(sid, site["unit"] or "")] = site

    async def site(self, sid: int, unit: str | None) -> dict[str, Any]:
        key = (sid, unit or "")
        if key not in self._sites:
            body = {
                "name": f"Điểm cầu {unit} {uuid.uuid4().hex[:6]}",
                "kind": "bridge",
                "unit": unit,
            }
            self._sites[key] = await self.admin("POST", f"/api/v1/sessions/{sid}/sites", body)
        return self._sites[key]

    async def excuse(self, sid: int, member: str) -> None:
        body = {"member": member, "reason": "Đi công tác"}
        await self.admin("POST", f"/api/v1/sessions/{sid}/excuses", body)

    async def fingerprint(self, sites: list[int] | None = None) -> dict[str, Any]:
        """What a refused change must leave as it was: sessions, users, units, members, the
        audit log's newest entry (every change writes one) and the sites of the sessions
        given (by default every fixed session's). Read at once: it is read twice a case."""
        reads = {
            "sessions": ("/api/v1/sessions", {}),
            "users": ("/api/v1/users", {}),
            "units": ("/api/v1/units", {}),
            "members": ("/api/v1/members", {"limit": "1000"}),
            "audit": ("/api/v1/audit", {"limit": "1"}),
        }
        for sid in self._sessions.values() if sites is None else sites:
            reads[f"sites {sid}"] = (f"/api/v1/sessions/{sid}/sites", {})
        answers = await asyncio.gather(
            *(self.admin("GET", path, **q) for path, q in reads.values())
        )
        return dict(zip(reads, answers, strict=True))


async def _build_world(http: aiohttp.ClientSession, url: str, database: str) -> World:
    w = World(http, url, database)
    await w.admin("POST", "/api/v1/units", {"units": UNITS})
    await w.admin("POST", "/api/v1/members", {"members": MEMBERS})
    users = {who.login: (who.root, who.role) for who in WHO.values() if who.login}
    users |= {login: (unit, "viewer") for login, unit in TARGETS.items()}
    for login, (unit, role) in users.items():
        body = {
            "login": login,
            "full_name": login.title(),
            "unit": unit,
            "role": role,
            "password": PASSWORD,
        }
        await w.admin("POST", "/api/v1/users", body)
    for who in WHO.values():
        if who.login:
            w.tokens[who.name] = await w.login(who.login)
    for who in WHO.values():
        for where in ("in", "above", "out"):
            if who.root is not None or where == "in":
                await w.session(who.audience(where))
    for audience, sid in w.fixed_sessions():
        units = [u["code"] for u in UNITS if any(TREE.within(u["code"], a) for a in audience)]
        await w.sites(sid, [*units, None])
    # every member absent once, for the absences report
    closed = await w.fresh_session(("P", "Q"))
    await w.admin("POST", f"/api/v1/sessions/{closed}/close")
    w.tokens["site"] = (await w.site(await w.session(("D1",)), "C1a"))["token"]
    return w


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def world(request: pytest.FixtureRequest, tmp_path_factory) -> AsyncIterator[World]:
    from serverproc import ServerProcess  # imports conftest: loaded late

    tmp = tmp_path_factory.mktemp(f"access-{request.param}")
    if request.param == "sqlite":
        database = f"sqlite:///{tmp / 'streamsvc.db'}"
    else:
        require_postgres()
        database = await create_pg_database()
    proc = ServerProcess(database, tmp / "server.log")
    try:
        await proc.start()
        async with aiohttp.ClientSession() as http:
            yield await _build_world(http, proc.url, database)
    finally:
        proc.stop()
        if request.param == "postgres":
            await drop_pg_database(database)


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request of a case: the route's parameters, its body and query, and a token other
    than the principal's own when the case needs one (a sign-out signs out a fresh one)."""

    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    query: dict[str, str] | None = None
    token: str | None = None


Build = Callable[["World", Who, str], Awaitable[Call]]
Check = Callable[["World", Who, str, Call, Answer], Awaitable[None]]


@dataclass(frozen=True)
class Row:
    """A route and what each role gets: "in out above" statuses ("-": no such case)."""

    method: str
    path: str
    build: Build
    admin: str
    organizer: str
    viewer: str
    token: str | None = None  # the v1 admin token, where it differs from an admin user
    site: str = "403 - -"  # a site's coordinator token: nothing but its own check-ins
    users_only: bool = False
    public: bool = False
    changes: bool = False  # a refused request must change nothing
    check: Check | None = None  # a look at a success's body (restricted to the scope?)
    codes: dict[int, str] = field(default_factory=dict)

    def expected(self, who: Who) -> dict[str, int]:
        spec = (self.token if who.name == "token" and self.token else None) or getattr(
            self, who.role
        )
        return {
            where: int(status)
            for where, status in zip(("in", "out", "above"), spec.split(), strict=True)
            if status != "-"
        }

    def code(self, status: int) -> str | None:
        default = {401: "unauthorized", 403: "forbidden", 404: "unknown_session"}
        return self.codes.get(status, default.get(status))


async def nothing(w: World, who: Who, where: str) -> Call:
    return Call()


async def in_session(w: World, who: Who, where: str) -> Call:
    """The fixed session of `where`: inside, reaching past the scope, or out of sight."""
    return Call({"sid": await w.session(who.audience(where))})


async def credentials(w: World, who: Who, where: str) -> Call:
    return Call(body={"login": who.login, "password": PASSWORD})


async def fresh_session(w: World, who: Who, where: str) -> Call:
    return Call({"sid": await w.fresh_session(who.audience(where))})


async def fresh_login(w: World, who: Who, where: str) -> Call:
    return Call(token=await w.login(who.login) if who.login else None)


async def new_user(w: World, who: Who, where: str) -> Call:
    unit = who.inside if where == "in" else who.outside
    body = {
        "login": f"u-{uuid.uuid4().hex[:10]}",
        "full_name": "Người dùng mới",
        "unit": unit,
        "role": "viewer",
        "password": PASSWORD,
    }
    return Call(body=body)


async def change_user(w: World, who: Who, where: str) -> Call:
    login = "target-c1a" if where == "in" else who.user_out
    return Call({"login": login}, {"full_name": f"Tên mới {uuid.uuid4().hex[:6]}"})


async def new_unit(w: World, who: Who, where: str) -> Call:
    parent = who.inside if where == "in" else who.outside
    code = f"N{uuid.uuid4().hex[:8]}"
    return Call(body={"units": [{"code": code, "name": "Chi bộ mới", "parent": parent}]})


async def upsert_member(w: World, who: Who, where: str) -> Call:
    if where == "in":
        row = next(m for m in MEMBERS if m["code"] == who.member_in)
    else:
        row = {
            "code": f"9{uuid.uuid4().int % 10**8}",
            "full_name": "Đảng viên mới",
            "unit": who.outside,
        }
    return Call(body={"members": [row]})


async def members_of(w: World, who: Who, where: str) -> Call:
    return Call(query={"unit": who.inside if where == "in" else str(who.outside)})


async def new_session(w: World, who: Who, where: str) -> Call:
    audience = {"in": [who.inside], "out": [who.outside], "above": list(who.above or ())}[where]
    now = datetime.now(UTC)
    body = {
        "title": "Phiên mới",
        "starts_at": iso(now),
        "ends_at": iso(now + timedelta(hours=1)),
        "audience": audience,
    }
    return Call(body=body)


async def new_site(w: World, who: Who, where: str) -> Call:
    call = await in_session(w, who, where)
    body = {"name": f"Điểm {uuid.uuid4().hex[:6]}", "kind": "broadcast", "unit": who.unit(where)}
    return Call(call.params, body)


async def new_excuse(w: World, who: Who, where: str) -> Call:
    sid = await w.fresh_session(who.audience(where))
    return Call({"sid": sid}, {"member": who.member(where), "reason": "Ốm"})


async def recorded_excuse(w: World, who: Who, where: str) -> Call:
    sid = await w.fresh_session(who.audience(where))
    member = who.member(where)
    await w.excuse(sid, member)
    return Call({"sid": sid, "member": member})


async def evidence(w: World, who: Who, where: str) -> Call:
    call = await in_session(w, who, where)
    row = {"member": who.member(where), "reflection": True, "quiz_score": None}
    return Call(call.params, {"evidence": [row]})


async def change_rules(w: World, who: Who, where: str) -> Call:
    sid = await w.fresh_session(who.audience(where))
    return Call({"sid": sid}, {"requires": {"reflection": True, "quiz_pass": 5}})


async def plan_board(w: World, who: Who, where: str) -> Call:
    return Call({"sid": await w.plan_session(who.audience(where), who.unit(where), "read")})


async def a_plan(w: World, who: Who, where: str) -> Call:
    unit = who.unit(where)
    sid = await w.plan_session(who.audience(where), unit, "record")
    return Call({"sid": sid, "unit": unit, "kind": "committee"}, {"note": "Kế hoạch hành động"})


async def recorded_plan(w: World, who: Who, where: str) -> Call:
    unit = who.unit(where)
    sid = await w.fresh_session(who.audience(where), plans={"depth": len(TREE.lineage(unit)) - 1})
    if where != "out":
        await w.admin("PUT", f"/api/v1/sessions/{sid}/plans/{unit}/committee", {})
    return Call({"sid": sid, "unit": unit, "kind": "committee"})


async def a_site(w: World, who: Who, where: str) -> Call:
    sid = await w.session(who.audience(where))
    unit = who.unit(where) if where != "out" else who.outside
    site = await w.site(sid, unit)
    return Call({"sid": sid, "site": site["id"]})


async def checkins(w: World, who: Who, where: str) -> Call:
    return Call({"sid": await w.session(who.audience(where))}, {"items": []})


async def absences(w: World, who: Who, where: str) -> Call:
    today = datetime.now(UTC).date()
    days = {"from": today - timedelta(days=1), "to": today + timedelta(days=1)}
    return Call(query={k: d.isoformat() for k, d in days.items()})


# -- looks at a success's body: restricted to the scope -----------------------------------------


async def sees_its_sessions(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    listed = {s["id"]: s["expected"] for s in answer.body["sessions"]}
    for _, sid in w.fixed_sessions():
        if sid in listed:
            assert listed[sid] == len(_members_seen(who, sid, w))
    assert await w.session(who.audience("in")) in listed
    if who.root is not None:
        assert await w.session(who.audience("above")) in listed
        assert await w.session(who.audience("out")) not in listed


async def sees_its_users(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    units = {u["unit"] for u in answer.body["users"]}
    assert who.inside in units
    assert not units & who.outside_codes()


async def sees_its_units(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    codes = {u["code"] for u in answer.body["units"]}
    # the units above the root are named too: a province session's audience, to a district
    above = set(TREE.lineage(who.root)) if who.root is not None else set()
    assert who.inside in codes and above <= codes
    assert not codes & (who.outside_codes() - above)


async def sees_its_members(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    found = {m["code"]: m["unit"] for m in answer.body["members"]}
    assert who.member_in in found and not set(found.values()) & who.outside_codes()
    everyone = await w.call("GET", "/api/v1/members", w.tokens[who.name])
    assert not {m["unit"] for m in everyone.body["members"]} & who.outside_codes()


async def _site_units(w: World, sid: int) -> dict[int, str | None]:
    """Each site of the session and its unit, as the admin token sees them."""
    sites = (await w.admin("GET", f"/api/v1/sessions/{sid}/sites"))["sites"]
    return {s["id"]: s["unit"] for s in sites}


def _outside_sites(who: Who, units: list[str | None]) -> list[str | None]:
    """The units of sites the principal must not see: outside its scope, or none at all
    (a site with no unit belongs to the whole tree)."""
    return [u for u in units if not (who.root is None or (u is not None and who.covers(u)))]


async def sees_its_sites(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    units = [s["unit"] for s in answer.body["sites"]]
    assert units and not _outside_sites(who, units)
    everyone = await _site_units(w, call.params["sid"])
    assert len(units) == len(everyone) - len(_outside_sites(who, list(everyone.values())))


async def sees_its_live(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    live = answer.body
    assert not {u["code"] for u in live["units"]} & who.outside_codes()
    units = await _site_units(w, call.params["sid"])
    seen = [units[s["id"]] for s in live["sites"]]
    assert seen and not _outside_sites(who, seen)
    assert live["expected"] == len(_members_seen(who, call.params["sid"], w))


async def sees_its_live_sites(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    """The paged per-site table holds the sites of the scope only, as LIVE's `sites` does."""
    units = await _site_units(w, call.params["sid"])
    seen = [units[s["id"]] for s in answer.body["sites"]]
    assert seen and not _outside_sites(who, seen)
    assert answer.body["total"] == len(seen)


def _members_seen(who: Who, sid: int, w: World) -> list[str]:
    """The roster's members expected at a fixed session and inside the principal's scope."""
    audience = next(a for a, s in w.fixed_sessions() if s == sid)
    return [
        m["code"]
        for m in MEMBERS
        if any(TREE.within(m["unit"], a) for a in audience) and who.covers(m["unit"])
    ]


async def sees_its_expected(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    assert answer.body["expected"] == len(_members_seen(who, call.params["sid"], w))


async def sees_its_records(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    members = sorted(r["member"] for r in answer.body["records"])
    assert members == sorted(_members_seen(who, call.params["sid"], w))


async def sees_its_csv(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    rows = list(csv.DictReader(io.StringIO(answer.text.removeprefix("\ufeff"))))
    assert sorted(r["member"] for r in rows) == sorted(_members_seen(who, call.params["sid"], w))


async def sees_its_summary(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    assert not {u["code"] for u in answer.body["units"]} & who.outside_codes()
    assert answer.body["total"]["expected"] == len(_members_seen(who, call.params["sid"], w))


async def sees_its_absences(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    absent = {m["member"]: m["unit"] for m in answer.body["members"]}
    assert who.member_in in absent
    assert not set(absent.values()) & who.outside_codes()


async def sees_its_year(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    members = {m["member"] for m in answer.body["members"]}
    assert who.member_in in members
    units = {m["unit"] for m in answer.body["members"]} | {u["code"] for u in answer.body["units"]}
    assert not units & who.outside_codes()


async def sees_its_plans(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    if answer.body is None:  # the CSV
        rows = csv.DictReader(io.StringIO(answer.text.removeprefix("\ufeff")))
        codes = {r["code"] for r in rows}
    else:
        codes = {u["code"] for u in answer.body["units"]}
    assert not codes & who.outside_codes()
    if where == "in":
        assert who.inside in codes


async def sees_its_audit(w: World, who: Who, where: str, call: Call, answer: Answer) -> None:
    if answer.body is None:  # the CSV
        entries = list(csv.DictReader(io.StringIO(answer.text.removeprefix("\ufeff"))))
    else:
        entries = answer.body["entries"]
    created = {e["target"] for e in entries if e["action"] == "user_created"}
    assert "target-c1a" in created
    if who.root is not None:
        assert who.user_out not in created


SEE = "200 404 200"  # a viewer's read of a session: visible unless out of sight
ACT = "403 404 403"  # an organizer's action to a viewer: refused, hidden still hidden
TABLE = [
    Row(
        "POST", "/api/v1/auth/login", credentials, "200 - -", "200 - -", "200 - -", users_only=True
    ),
    Row(
        "POST",
        "/api/v1/auth/logout",
        fresh_login,
        "204 - -",
        "204 - -",
        "204 - -",
        token="400 - -",
        codes={400: "invalid"},
    ),
    Row("GET", "/api/v1/auth/me", nothing, "200 - -", "200 - -", "200 - -"),
    Row("GET", "/api/v1/users", nothing, "200 - -", "403 - -", "403 - -", check=sees_its_users),
    Row("POST", "/api/v1/users", new_user, "201 403 -", "403 403 -", "403 403 -", changes=True),
    Row(
        "PATCH",
        "/api/v1/users/{login}",
        change_user,
        "200 403 -",
        "403 403 -",
        "403 403 -",
        changes=True,
    ),
    Row("GET", "/api/v1/audit", nothing, "200 - -", "403 - -", "403 - -", check=sees_its_audit),
    Row("GET", "/api/v1/audit.csv", nothing, "200 - -", "403 - -", "403 - -", check=sees_its_audit),
    Row("POST", "/api/v1/units", new_unit, "200 403 -", "403 403 -", "403 403 -", changes=True),
    Row("GET", "/api/v1/units", nothing, "200 - -", "200 - -", "200 - -", check=sees_its_units),
    Row(
        "POST",
        "/api/v1/members",
        upsert_member,
        "200 403 -",
        "403 403 -",
        "403 403 -",
        changes=True,
    ),
    Row(
        "GET",
        "/api/v1/members",
        members_of,
        "200 403 -",
        "200 403 -",
        "200 403 -",
        check=sees_its_members,
    ),
    Row(
        "POST",
        "/api/v1/sessions",
        new_session,
        "201 403 403",
        "201 403 403",
        "403 403 403",
        changes=True,
    ),
    Row(
        "GET",
        "/api/v1/sessions",
        nothing,
        "200 - -",
        "200 - -",
        "200 - -",
        check=sees_its_sessions,
    ),
    Row("GET", "/api/v1/sessions/{sid}", in_session, SEE, SEE, SEE, check=sees_its_expected),
    Row(
        "PATCH",
        "/api/v1/sessions/{sid}",
        change_rules,
        "200 404 403",
        "200 404 403",
        ACT,
        changes=True,
    ),
    Row("GET", "/api/v1/sessions/{sid}/plans", plan_board, SEE, SEE, SEE, check=sees_its_plans),
    Row(
        "GET",
        "/api/v1/sessions/{sid}/plans/missing",
        plan_board,
        SEE,
        SEE,
        SEE,
        check=sees_its_plans,
    ),
    Row(
        "GET",
        "/api/v1/sessions/{sid}/plans/missing.csv",
        plan_board,
        SEE,
        SEE,
        SEE,
        check=sees_its_plans,
    ),
    Row(
        "PUT",
        "/api/v1/sessions/{sid}/plans/{unit}/{kind}",
        a_plan,
        "200 404 403",
        "200 404 403",
        ACT,
        changes=True,
    ),
    Row(
        "DELETE",
        "/api/v1/sessions/{sid}/plans/{unit}/{kind}",
        recorded_plan,
        "204 404 403",
        "204 404 403",
        ACT,
        changes=True,
    ),
    Row(
        "POST",
        "/api/v1/sessions/{sid}/close",
        fresh_session,
        "200 404 403",
        "200 404 403",
        ACT,
        changes=True,
    ),
    Row(
        "POST",
        "/api/v1/sessions/{sid}/sites",
        new_site,
        "201 404 403",
        "201 404 403",
        ACT,
        changes=True,
    ),
    Row("GET", "/api/v1/sessions/{sid}/sites", in_session, SEE, SEE, SEE, check=sees_its_sites),
    Row(
        "POST",
        "/api/v1/sessions/{sid}/excuses",
        new_excuse,
        "201 404 403",
        "201 404 403",
        ACT,
        changes=True,
    ),
    Row(
        "DELETE",
        "/api/v1/sessions/{sid}/excuses/{member}",
        recorded_excuse,
        "204 404 403",
        "204 404 403",
        ACT,
        changes=True,
    ),
    Row(
        "POST",
        "/api/v1/sessions/{sid}/sites/{site}/token",
        a_site,
        "200 404 403",
        "200 404 403",
        ACT,
        changes=True,
    ),
    # a site's coordinator token only: every user and the admin token are refused alike
    Row(
        "POST",
        "/api/v1/sessions/{sid}/checkins",
        checkins,
        "403 403 -",
        "403 403 -",
        "403 403 -",
        site="200 403 -",
        changes=True,
    ),
    Row(
        "GET",
        "/api/v1/sessions/{sid}/roster",
        in_session,
        "403 403 -",
        "403 403 -",
        "403 403 -",
        site="200 403 -",
    ),
    Row(
        "POST",
        "/api/v1/sessions/{sid}/evidence",
        evidence,
        "200 404 403",
        "200 404 403",
        ACT,
        changes=True,
    ),
    Row("GET", "/api/v1/sessions/{sid}/live", in_session, SEE, SEE, SEE, check=sees_its_live),
    Row(
        "GET",
        "/api/v1/sessions/{sid}/live/sites",
        in_session,
        SEE,
        SEE,
        SEE,
        check=sees_its_live_sites,
    ),
    Row(
        "GET",
        "/api/v1/sessions/{sid}/attendance",
        in_session,
        SEE,
        SEE,
        SEE,
        check=sees_its_records,
    ),
    Row(
        "GET",
        "/api/v1/sessions/{sid}/attendance.csv",
        in_session,
        SEE,
        SEE,
        SEE,
        check=sees_its_csv,
    ),
    Row("GET", "/api/v1/sessions/{sid}/attendance.xlsx", in_session, SEE, SEE, SEE),
    Row("GET", "/api/v1/sessions/{sid}/summary", in_session, SEE, SEE, SEE, check=sees_its_summary),
    Row(
        "GET",
        "/api/v1/reports/absences",
        absences,
        "200 - -",
        "200 - -",
        "200 - -",
        check=sees_its_absences,
    ),
    Row(
        "GET",
        "/api/v1/reports/yearly",
        absences,
        "200 - -",
        "200 - -",
        "200 - -",
        check=sees_its_year,
    ),
    Row("GET", "/api/v1/reports/yearly.csv", absences, "200 - -", "200 - -", "200 - -"),
    Row("GET", "/api/v1/reports/yearly.xlsx", absences, "200 - -", "200 - -", "200 - -"),
    Row(
        "GET",
        "/api/v1/openapi.json",
        nothing,
        "200 - -",
        "200 - -",
        "200 - -",
        site="200 - -",
        public=True,
    ),
]


def _cases() -> list[Any]:
    cases = []
    for row in TABLE:
        for who in WHO.values():
            if row.users_only and who.login is None:  # the admin token, a site's
                continue
            for where, status in row.expected(who).items():
                if who.root is None and where != "in":
                    continue  # the whole tree has no outside
                cases.append(
                    pytest.param(
                        row, who, where, status, id=f"{row.method} {row.path} {who.name} {where}"
                    )
                )
    return cases


async def test_the_table_has_a_row_for_every_route():
    """A new route without a row fails here, before anyone forgets to decide who may use it."""
    from streamsvc.web.app import create_app

    app = create_app(Settings(database="sqlite:///unused.db", admin_token=ADMIN))
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.method != "HEAD"
    }
    assert {(row.method, row.path) for row in TABLE} == routes


async def test_the_fingerprint_sees_a_change(world: World):
    """The "nothing changed" check is worth something: a site or a renamed user shows."""
    sid = await world.fresh_session(("D1",))
    before = await world.fingerprint([sid])
    await world.site(sid, "C1b")
    after = await world.fingerprint([sid])
    assert {k for k in before if before[k] != after[k]} == {f"sites {sid}", "audit"}
    await world.admin("PATCH", "/api/v1/users/target-c1a", {"full_name": "Tên khác"})
    final = await world.fingerprint([sid])
    assert {k for k in after if after[k] != final[k]} == {"users", "audit"}


@pytest.mark.parametrize(("row", "who", "where", "status"), _cases())
async def test_access(world: World, row: Row, who: Who, where: str, status: int):
    call = await row.build(world, who, where)
    token = None if row.public else (call.token or world.tokens[who.name])
    path = row.path.format(**call.params)
    sites = [call.params["sid"]] if "sid" in call.params else []
    before = await world.fingerprint(sites) if row.changes and status >= 400 else None
    answer = await world.call(row.method, path, token, call.body, call.query)
    assert answer.status == status, answer.text
    if status >= 400:
        assert answer.body["error"]["code"] == row.code(status), answer.body
    if before is not None:
        assert await world.fingerprint(sites) == before, "a refused request changed something"
    if status == 404 and "sid" in call.params:
        unknown = row.path.format(**{**call.params, "sid": UNKNOWN_SID})
        other = await world.call(row.method, unknown, token, call.body, call.query)
        assert other.status == 404
        same = json.loads(json.dumps(other.body).replace(str(UNKNOWN_SID), str(call.params["sid"])))
        assert answer.body == same, "a hidden session must read as an unknown one"
    if status < 300 and row.check is not None:
        await row.check(world, who, where, call, answer)


# -- /ws/monitor -----------------------------------------------------------------------------


MONITOR = [
    pytest.param(who, where, expected, id=f"{who.name} {where}")
    for who in WHO.values()
    for where, expected in (("in", "snapshot"), ("above", "snapshot"), ("out", "not_found"))
    if (who.root is not None or where == "in") and who.role != "site"
]


async def _monitor_hello(
    world: World, token: str, sid: int, unit: str | None = None
) -> tuple[dict[str, Any], int | None]:
    """The first answer to a monitor's hello, and the close code if the socket was closed."""
    hello: dict[str, Any] = {"type": "hello", "token": token, "session": sid}
    if unit is not None:
        hello["unit"] = unit
    async with world.http.ws_connect(world.url + "/ws/monitor") as ws:
        await ws.send_json(hello)
        first = await ws.receive_json(timeout=10)
        if first.get("type") == "error":
            await ws.receive(timeout=10)
            return first, ws.close_code
        return first, None


@pytest.mark.parametrize(("who", "where", "expected"), MONITOR)
async def test_monitor(world: World, who: Who, where: str, expected: str):
    sid = await world.session(who.audience(where))
    first, closed = await _monitor_hello(world, world.tokens[who.name], sid)
    if expected == "snapshot":
        assert first["type"] == "snapshot", first
        assert not {u["code"] for u in first["live"]["units"]} & who.outside_codes()
        assert first["live"]["expected"] == len(_members_seen(who, sid, world))
    else:
        assert (first["type"], first["code"], closed) == ("error", expected, 4404)
        unknown, closed_unknown = await _monitor_hello(world, world.tokens[who.name], UNKNOWN_SID)
        assert (unknown["code"], closed_unknown) == (first["code"], closed)


async def _expired_token(w: World, login: str) -> str:
    """A sign-in token whose 12 hours ran out, written through the store as login would."""
    token = new_token()
    store = open_store(w.database)
    await store.open()
    try:
        now = datetime.now(UTC)
        await store.add_auth_token(
            hash_token(token), login, now - timedelta(hours=13), now - timedelta(hours=1)
        )
    finally:
        await store.close()
    return token


async def _signed_out_token(w: World, login: str) -> str:
    token = await w.login(login)
    out = await w.call("POST", "/api/v1/auth/logout", token)
    assert out.status == 204
    return token


async def _site_token(w: World, login: str) -> str:
    return str((await w.site(await w.session(("D1",)), "C1a"))["token"])


async def _own_token(w: World, login: str) -> str:
    return w.tokens[login]


MONITOR_REFUSALS = [
    # token, unit in the hello, error code, close code
    pytest.param(_site_token, None, "unauthorized", 4401, id="site-token"),
    pytest.param(_signed_out_token, None, "unauthorized", 4401, id="signed-out"),
    pytest.param(_expired_token, None, "unauthorized", 4401, id="expired"),
    pytest.param(_own_token, "D2", "forbidden", 4403, id="unit-outside-the-scope"),
    pytest.param(_own_token, "P", "forbidden", 4403, id="unit-above-the-scope"),
]


@pytest.mark.parametrize(("token_of", "unit", "code", "close"), MONITOR_REFUSALS)
async def test_monitor_refusals(world: World, token_of, unit: str | None, code: str, close: int):
    token = await token_of(world, "viewer-d1")
    first, closed = await _monitor_hello(world, token, await world.session(("P",)), unit)
    assert (first["type"], first.get("code"), closed) == ("error", code, close), first


async def test_watching_one_subtree_inside_the_scope(world: World):
    """`unit` narrows LIVE to a subtree inside the scope, on the socket and over HTTP;
    outside it, 403 forbidden."""
    sid, token = await world.session(("P",)), world.tokens["viewer-d1"]
    first, closed = await _monitor_hello(world, token, sid, "C1a")
    assert (first["type"], closed) == ("snapshot", None), first
    assert {u["code"] for u in first["live"]["units"]} <= {"C1a"}
    assert first["live"]["expected"] == 1
    answer = await world.call("GET", f"/api/v1/sessions/{sid}/live", token, query={"unit": "C1a"})
    assert (answer.status, answer.body["expected"]) == (200, 1), answer.text
    for unit in ("D2", "P"):
        answer = await world.call(
            "GET", f"/api/v1/sessions/{sid}/live", token, query={"unit": unit}
        )
        assert (answer.status, answer.body["error"]["code"]) == (403, "forbidden")


# -- bad input: each gets the contract's error and changes nothing --------------------------------


async def _checkin_hello(world: World, token: str) -> tuple[dict[str, Any], int | None]:
    async with world.http.ws_connect(world.url + "/ws/checkin") as ws:
        await ws.send_json({"type": "hello", "token": token, "client": "phone-1"})
        first = await ws.receive_json(timeout=10)
        await ws.receive(timeout=10)
        return first, ws.close_code


async def wrong_password(w: World) -> Answer:
    return await w.call(
        "POST", "/api/v1/auth/login", None, {"login": "org-d1", "password": "sai-mật-khẩu-1"}
    )


async def unknown_login(w: World) -> Answer:
    return await w.call(
        "POST", "/api/v1/auth/login", None, {"login": "nobody", "password": PASSWORD}
    )


async def expired_token(w: World) -> Answer:
    return await w.call("GET", "/api/v1/sessions", await _expired_token(w, "viewer-d1"))


async def revoked_token(w: World) -> Answer:
    return await w.call("GET", "/api/v1/sessions", await _signed_out_token(w, "viewer-d1"))


async def deactivated_user(w: World) -> Answer:
    login = f"gone-{uuid.uuid4().hex[:6]}"
    body = {
        "login": login,
        "full_name": "Sẽ nghỉ",
        "unit": "C1a",
        "role": "organizer",
        "password": PASSWORD,
    }
    await w.admin("POST", "/api/v1/users", body)
    token = await w.login(login)
    await w.admin("PATCH", f"/api/v1/users/{login}", {"active": False})
    answer = await w.call("GET", "/api/v1/sessions", token)
    assert answer.status == 401, answer.text
    # and signing in again with the right password is refused as a wrong one would be
    return await w.call("POST", "/api/v1/auth/login", None, {"login": login, "password": PASSWORD})


async def site_token_on_user_endpoint(w: World) -> Answer:
    site = await w.site(await w.session(("D1",)), "C1a")
    return await w.call("GET", "/api/v1/sessions", site["token"])


async def organizer_makes_an_admin(w: World) -> Answer:
    body = {
        "login": "esc-admin",
        "full_name": "X",
        "unit": "C1a",
        "role": "admin",
        "password": PASSWORD,
    }
    return await w.call("POST", "/api/v1/users", w.tokens["org-d1"], body)


async def organizer_promotes_a_viewer(w: World) -> Answer:
    return await w.call("PATCH", "/api/v1/users/viewer-d1", w.tokens["org-d1"], {"role": "admin"})


async def district_admin_makes_a_province_user(w: World) -> Answer:
    body = {"login": "esc-p", "full_name": "X", "unit": "P", "role": "viewer", "password": PASSWORD}
    return await w.call("POST", "/api/v1/users", w.tokens["admin-d1"], body)


async def district_admin_promotes_above(w: World) -> Answer:
    return await w.call("PATCH", "/api/v1/users/org-d1", w.tokens["admin-d1"], {"unit": "P"})


async def cell_organizer_moves_up(w: World) -> Answer:
    return await w.call("PATCH", "/api/v1/users/org-c1a", w.tokens["org-c1a"], {"unit": "D1"})


async def viewer_raises_own_role(w: World) -> Answer:
    return await w.call(
        "PATCH", "/api/v1/users/viewer-d1", w.tokens["viewer-d1"], {"role": "admin"}
    )


async def session_from_outside(w: World) -> Answer:
    sid = await w.session(("D2",))
    return await w.call("GET", f"/api/v1/sessions/{sid}", w.tokens["org-d1"])


async def members_with_one_row_outside(w: World) -> Answer:
    rows = [
        {"code": "81000001", "full_name": "Mới Một", "unit": "C1a"},
        {"code": "81000002", "full_name": "Mới Hai", "unit": "C2a"},
        {"code": "81000003", "full_name": "Mới Ba", "unit": "C1b"},
    ]
    return await w.call("POST", "/api/v1/members", w.tokens["admin-d1"], {"members": rows})


async def units_with_one_row_outside(w: World) -> Answer:
    rows = [
        {"code": "N-ok", "name": "Mới", "parent": "D1"},
        {"code": "N-under-ok", "name": "Mới", "parent": "N-ok"},
        {"code": "N-out", "name": "Mới", "parent": "D2"},
    ]
    return await w.call("POST", "/api/v1/units", w.tokens["admin-d1"], {"units": rows})


async def sites_with_one_row_outside(w: World) -> Answer:
    sid = await w.session(("P",))
    rows = [
        {"name": "Điểm D1", "kind": "hall", "unit": "D1", "capacity": 10},
        {"name": "Điểm C1a", "kind": "bridge", "unit": "C1a", "capacity": None},
        {"name": "Điểm D2", "kind": "bridge", "unit": "D2", "capacity": None},
    ]
    return await w.call(
        "POST", f"/api/v1/sessions/{sid}/sites", w.tokens["org-d1"], {"sites": rows}
    )


async def members_csv_with_one_row_outside(w: World) -> Answer:
    text = "code,full_name,unit\n82000001,Mới Một,C1a\n82000002,Mới Hai,D2\n"
    return await w.call("POST", "/api/v1/members", w.tokens["admin-d1"], text)


async def units_csv_with_one_row_outside(w: World) -> Answer:
    text = "code,name,parent\nN-csv-out,Mới,C2a\nN-csv-ok,Mới,C1b\n"
    return await w.call("POST", "/api/v1/units", w.tokens["admin-d1"], text)


async def sites_csv_with_one_row_outside(w: World) -> Answer:
    sid = await w.session(("D1",))
    text = "name,kind,unit,capacity\nĐiểm 1,hall,C1a,10\nĐiểm 2,hall,,\n"  # no unit: whole tree
    return await w.call("POST", f"/api/v1/sessions/{sid}/sites", w.tokens["org-d1"], text)


async def cell_organizer_moves_a_unit_out(w: World) -> Answer:
    """Not an admin: no import at all, even of its own cell."""
    rows = [{"code": "C1a", "name": "Chi bộ C1a", "parent": "D1"}]
    return await w.call("POST", "/api/v1/units", w.tokens["org-c1a"], {"units": rows})


async def district_admin_moves_its_root(w: World) -> Answer:
    rows = [{"code": "D1", "name": "Huyện ủy D1", "parent": "D2"}]
    return await w.call("POST", "/api/v1/units", w.tokens["admin-d1"], {"units": rows})


async def makeup_of_a_hidden_session(w: World) -> Answer:
    now = datetime.now(UTC)
    body = {
        "title": "Học lại",
        "starts_at": iso(now),
        "ends_at": iso(now + timedelta(hours=1)),
        "makeup_for": await w.session(("D2",)),
    }
    return await w.call("POST", "/api/v1/sessions", w.tokens["org-d1"], body)


async def makeup_of_the_province_session(w: World) -> Answer:
    """A make-up of the excused takes the original's audience: the whole province."""
    now = datetime.now(UTC)
    body = {
        "title": "Học lại",
        "starts_at": iso(now),
        "ends_at": iso(now + timedelta(hours=1)),
        "makeup_for": await w.session(("P",)),
    }
    return await w.call("POST", "/api/v1/sessions", w.tokens["org-d1"], body)


async def user_named_as_the_admin_token(w: World) -> Answer:
    """A user called `admin-token` would read in the audit log as the v1 admin token."""
    body = {
        "login": "admin-token",
        "full_name": "Giả mạo",
        "unit": "C1a",
        "role": "viewer",
        "password": PASSWORD,
    }
    return await w.call("POST", "/api/v1/users", w.tokens["admin-d1"], body)


BAD = [
    pytest.param(wrong_password, 401, "bad_credentials", None, id="wrong-password"),
    pytest.param(unknown_login, 401, "bad_credentials", None, id="unknown-login"),
    pytest.param(expired_token, 401, "unauthorized", None, id="expired-token"),
    pytest.param(revoked_token, 401, "unauthorized", None, id="revoked-token"),
    pytest.param(deactivated_user, 401, "bad_credentials", None, id="deactivated-user"),
    pytest.param(site_token_on_user_endpoint, 403, "forbidden", None, id="site-token-on-sessions"),
    pytest.param(organizer_makes_an_admin, 403, "forbidden", None, id="organizer-makes-admin"),
    pytest.param(organizer_promotes_a_viewer, 403, "forbidden", None, id="organizer-promotes"),
    pytest.param(district_admin_makes_a_province_user, 403, "forbidden", None, id="admin-d1-at-p"),
    pytest.param(district_admin_promotes_above, 403, "forbidden", None, id="admin-d1-moves-up"),
    pytest.param(cell_organizer_moves_up, 403, "forbidden", None, id="self-up-the-tree"),
    pytest.param(viewer_raises_own_role, 403, "forbidden", None, id="self-role"),
    pytest.param(session_from_outside, 404, "unknown_session", None, id="session-from-outside"),
    pytest.param(members_with_one_row_outside, 403, "forbidden", [2], id="members-import"),
    pytest.param(units_with_one_row_outside, 403, "forbidden", [3], id="units-import"),
    pytest.param(sites_with_one_row_outside, 403, "forbidden", [3], id="sites-upload"),
    pytest.param(members_csv_with_one_row_outside, 403, "forbidden", [2], id="members-csv"),
    pytest.param(units_csv_with_one_row_outside, 403, "forbidden", [1], id="units-csv"),
    pytest.param(sites_csv_with_one_row_outside, 403, "forbidden", [2], id="sites-csv"),
    pytest.param(cell_organizer_moves_a_unit_out, 403, "forbidden", None, id="organizer-imports"),
    pytest.param(district_admin_moves_its_root, 403, "forbidden", [1], id="admin-moves-its-root"),
    pytest.param(makeup_of_a_hidden_session, 404, "unknown_session", None, id="makeup-hidden"),
    pytest.param(makeup_of_the_province_session, 403, "forbidden", None, id="makeup-above"),
    pytest.param(
        user_named_as_the_admin_token,
        400,
        "invalid",
        None,
        id="login-admin-token",
    ),
]


@pytest.mark.parametrize(("attempt", "status", "code", "rows"), BAD)
async def test_bad_input(world: World, attempt, status: int, code: str, rows: list[int] | None):
    before = await world.fingerprint()
    answer = await attempt(world)
    error = (answer.body or {}).get("error") or {}
    assert (answer.status, error.get("code")) == (status, code), answer.text
    if rows is not None:
        assert [d["row"] for d in answer.body["error"]["details"]] == rows
    after = await world.fingerprint()
    unchanged = [k for k in before if k not in ("users", "audit")]
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    if attempt is not deactivated_user:
        assert after["users"] == before["users"]
    if status != 401:  # sign-ins write login / login_failed / logout, which are no changes
        assert after["audit"] == before["audit"]


async def test_a_user_token_is_refused_on_checkin(world: World):
    first, closed = await _checkin_hello(world, world.tokens["org-d1"])
    assert (first["type"], first["code"], closed) == ("error", "unauthorized", 4401)
    first, closed = await _checkin_hello(world, ADMIN)
    assert (first["type"], first["code"], closed) == ("error", "unauthorized", 4401)


async def test_wrong_password_and_unknown_login_read_the_same(world: World):
    wrong, unknown = await wrong_password(world), await unknown_login(world)
    assert (wrong.status, wrong.body) == (unknown.status, unknown.body)
