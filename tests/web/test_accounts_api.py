"""Accounts over HTTP against a real `streamsvc serve` on each store: signing in and out,
the sign-in limits (counted from the audit log), users and their scope, and the audit log
with its filters and CSV.

A province (TU) with two districts: DB1 (cells CB1, CB2) and DB2 (cell CB3), as in builders.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from builders import MEMBERS, UNITS, checkin, iso, now
from conftest import ADMIN
from jsonschema import Draft202012Validator
from streamsvc_clients.serverproc import ServerProcess as BareServerProcess

from streamsvc.web.openapi import openapi_document

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
PASSWORD = "mật-khẩu-đủ-dài"
USERS = [
    {"login": "db1.admin", "full_name": "Hà Văn Khánh", "unit": "DB1", "role": "admin"},
    {"login": "db1.org", "full_name": "Lương Thị Nga", "unit": "DB1", "role": "organizer"},
    {"login": "cb1.viewer", "full_name": "Đinh Văn Tú", "unit": "CB1", "role": "viewer"},
    {"login": "db2.admin", "full_name": "Bế Thị Lan", "unit": "DB2", "role": "admin"},
]
# the contract's list: every one must be written by what the audit test does
ACTIONS = {
    "login",
    "login_failed",
    "logout",
    "user_created",
    "user_changed",
    "roster_imported",
    "session_created",
    "session_closed",
    "site_created",
    "site_token_reset",
    "excuse_recorded",
    "excuse_withdrawn",
    "checkin_voided",
}


async def next_second() -> datetime:
    """The next whole second, once it has come: entries show whole seconds, so a filter's
    bound on one puts every entry clearly on one side."""
    moment = now().replace(microsecond=0) + timedelta(seconds=1)
    await asyncio.sleep((moment - now()).total_seconds() + 0.01)
    return moment


def conforms(body: Any, schema: str) -> None:
    """The body has the shape the OpenAPI document gives it (schemathesis checks the answers
    to the admin token; these are a user's)."""
    document = openapi_document()
    Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    ).validate(body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    """A few calls against one base URL; each returns (status, JSON body or None)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = ADMIN,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        sent = {**(bearer(token) if token else {}), **(headers or {})}
        async with self.http.request(method, self.base + path, json=body, headers=sent) as r:
            data = await r.json() if r.content_type == "application/json" else await r.read()
            return r.status, data, r

    async def ok(self, method: str, path: str, token: str | None = ADMIN, body: Any = None,
                 status: int = 200) -> Any:  # fmt: skip
        got, data, _ = await self.call(method, path, token, body)
        assert got == status, (method, path, got, data)
        return data

    async def login(self, login: str, password: str = PASSWORD, **headers: str) -> Any:
        return await self.call(
            "POST", "/api/v1/auth/login", None, {"login": login, "password": password}, headers
        )

    async def token(self, login: str, password: str = PASSWORD) -> str:
        status, data, _ = await self.login(login, password)
        assert status == 200, data
        return str(data["token"])


async def seed(api: Api, users: list[dict[str, str]] = USERS) -> None:
    await api.ok("POST", "/api/v1/units", body={"units": UNITS})
    await api.ok("POST", "/api/v1/members", body={"members": MEMBERS})
    for user in users:
        await api.ok("POST", "/api/v1/users", body={**user, "password": PASSWORD}, status=201)


@pytest.fixture
async def api(server) -> Any:
    async with aiohttp.ClientSession() as http:
        yield Api(http, server.url)


async def test_login_gives_a_12_hour_token_and_the_user_without_a_password(api):
    await seed(api, USERS[:1])
    status, data, response = await api.login("db1.admin")
    assert status == 200, data
    assert response.headers["Cache-Control"] == "no-store"
    assert data["user"] == {**USERS[0], "active": True}
    expires = datetime.fromisoformat(data["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=12))) < timedelta(minutes=1)
    assert "password" not in str(data).lower() and PASSWORD not in str(data)
    conforms(data, "SignedIn")
    me = await api.ok("GET", "/api/v1/auth/me", data["token"])
    conforms(me, "Me")
    assert (me["actor"], me["role"], me["unit"]) == ("db1.admin", "admin", "DB1")
    assert me["unit_name"] == "Đảng bộ huyện Ba Bể" and me["user"] == data["user"]
    listed = await api.ok("GET", "/api/v1/users")
    assert listed == {"users": [{**USERS[0], "active": True}]}


async def test_a_wrong_password_and_an_unknown_login_get_the_same_answer(api):
    await seed(api, USERS[:1])
    wrong = await api.login("db1.admin", "not-the-password")
    unknown = await api.login("nobody.here", PASSWORD)
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1]
    assert wrong[1]["error"]["code"] == "bad_credentials"


async def test_five_failures_lock_the_login_even_for_the_right_password(api):
    await seed(api, USERS[:2])
    for _ in range(5):
        assert (await api.login("db1.admin", "not-the-password"))[0] == 401
    status, data, response = await api.login("db1.admin")
    assert status == 429, data
    assert data["error"]["code"] == "too_many_attempts"
    assert 800 < int(response.headers["Retry-After"]) <= 900
    assert data["error"]["details"]["retry_after"] == int(response.headers["Retry-After"])
    # another login from the same address is not locked (5 < 20)
    assert (await api.login("db1.org"))[0] == 200


async def test_a_burst_of_guesses_at_once_gets_no_more_than_the_limit(api):
    """Guesses sent together all pass the first check before any failure is written; the
    check after the (queued) password hashing is what holds the limit, and past it even the
    right password is refused, so the answers tell a guesser nothing."""
    await seed(api, USERS[:1])
    guesses = [api.login("db1.admin", f"guess-number-{i}") for i in range(12)]

    async def right_one_after_them() -> Any:
        while len((await api.ok("GET", "/api/v1/audit?action=login_failed"))["entries"]) < 5:
            await asyncio.sleep(0.02)
        return await api.login("db1.admin")

    answers = await asyncio.gather(*guesses, right_one_after_them())
    statuses = [status for status, _, _ in answers]
    # two hashes run at once, so one more failure may slip in beside the fifth
    assert statuses.count(401) <= 6, statuses
    assert set(statuses) == {401, 429}, statuses
    assert statuses[-1] == 429, "the right password after the limit"
    failed = (await api.ok("GET", "/api/v1/audit?action=login_failed"))["entries"]
    assert len(failed) == statuses.count(401)


async def test_twenty_failures_from_one_address_lock_every_login(api):
    await seed(api, USERS[:1])
    for i in range(20):
        # a forged X-Forwarded-For changes nothing: no proxy is trusted
        status, _, _ = await api.login(f"guess-{i % 4}", "wrong-password", **{
            "X-Forwarded-For": f"198.51.100.{i}"})  # fmt: skip
        assert status == 401
    status, data, response = await api.login("db1.admin")
    assert status == 429, data
    assert int(response.headers["Retry-After"]) > 800
    entries = (await api.ok("GET", "/api/v1/audit?action=login_failed"))["entries"]
    assert len(entries) == 20 and {e["address"] for e in entries} == {"127.0.0.1"}


async def test_logout_ends_the_token_at_once(api):
    await seed(api, USERS[:1])
    token = await api.token("db1.admin")
    other = await api.token("db1.admin")
    status, body, _ = await api.call("POST", "/api/v1/auth/logout", token)
    assert (status, body) == (204, b"")
    status, body, _ = await api.call("GET", "/api/v1/auth/me", token)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert (await api.call("POST", "/api/v1/auth/logout", token))[0] == 401
    # only that sign-in ended
    assert (await api.call("GET", "/api/v1/auth/me", other))[0] == 200
    # the admin token is not a sign-in
    status, body, _ = await api.call("POST", "/api/v1/auth/logout", ADMIN)
    assert status == 400


@pytest.mark.parametrize(
    ("change", "old_password_works"),
    [({"password": "một-mật-khẩu-mới"}, False), ({"active": False}, None)],
    ids=["password", "deactivate"],
)
async def test_a_new_password_or_deactivation_revokes_tokens_at_once(
    api, change, old_password_works
):
    await seed(api, USERS[:1])
    tokens = [await api.token("db1.admin") for _ in range(2)]
    changed = await api.ok("PATCH", "/api/v1/users/db1.admin", body=change)
    assert changed == {**USERS[0], "active": change.get("active", True)}
    for token in tokens:
        status, body, _ = await api.call("GET", "/api/v1/users", token)
        assert status == 401, body
    if old_password_works is None:  # deactivated: even the right password is refused
        status, body, _ = await api.login("db1.admin")
        assert (status, body["error"]["code"]) == (401, "bad_credentials")
        await api.ok("PATCH", "/api/v1/users/db1.admin", body={"active": True})
        assert (await api.login("db1.admin"))[0] == 200
    else:
        assert (await api.login("db1.admin"))[0] == 401
        assert (await api.login("db1.admin", change["password"]))[0] == 200


async def test_user_input_errors(api):
    await seed(api, USERS[:1])
    short = {**USERS[1], "password": "123456789"}
    status, body, _ = await api.call("POST", "/api/v1/users", ADMIN, short)
    assert (status, body["error"]["details"]) == (400, {"field": "password"})
    status, body, _ = await api.call(
        "PATCH", "/api/v1/users/db1.admin", ADMIN, {"password": "short"}
    )
    assert status == 400
    status, body, _ = await api.call(
        "POST", "/api/v1/users", ADMIN, {**USERS[0], "full_name": "x", "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (409, "login_taken")
    status, body, _ = await api.call("PATCH", "/api/v1/users/nobody", ADMIN, {"active": False})
    assert (status, body["error"]["code"]) == (404, "unknown_user")
    status, body, _ = await api.call(
        "POST", "/api/v1/users", ADMIN, {**USERS[1], "unit": "NOPE", "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (404, "unknown_unit")


async def test_users_are_managed_inside_the_scope(api):
    await seed(api)
    district = await api.token("db1.admin")
    listed = await api.ok("GET", "/api/v1/users", district)
    assert {u["login"] for u in listed["users"]} == {"db1.admin", "db1.org", "cb1.viewer"}
    everyone = await api.ok("GET", "/api/v1/users")
    assert {u["login"] for u in everyone["users"]} == {u["login"] for u in USERS}
    # a user in DB2 is outside DB1's admin's scope: forbidden, as a new one there is
    status, body, _ = await api.call(
        "PATCH", "/api/v1/users/db2.admin", district, {"role": "viewer"}
    )
    assert (status, body["error"]["code"]) == (403, "forbidden")
    new = {
        "login": "cb3.x",
        "full_name": "X",
        "unit": "CB3",
        "role": "viewer",
        "password": PASSWORD,
    }
    status, body, _ = await api.call("POST", "/api/v1/users", district, new)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    new["unit"] = "CB2"
    assert (await api.call("POST", "/api/v1/users", district, new))[0] == 201
    for login in ("db1.org", "cb1.viewer"):
        token = await api.token(login)
        for method, path in (("GET", "/api/v1/users"), ("GET", "/api/v1/audit")):
            status, body, _ = await api.call(method, path, token)
            assert (status, body["error"]["code"]) == (403, "forbidden"), (login, path)


async def test_a_user_changes_their_own_name_and_password_and_nothing_else(api):
    await seed(api, USERS[2:3])
    token = await api.token("cb1.viewer")
    for change in ({"role": "admin"}, {"unit": "TU"}, {"active": False}):
        status, body, _ = await api.call("PATCH", "/api/v1/users/cb1.viewer", token, change)
        assert (status, body["error"]["code"]) == (403, "forbidden"), change
    changed = await api.ok(
        "PATCH", "/api/v1/users/cb1.viewer", token, {"full_name": "Đinh Văn Tuấn"}
    )
    assert (changed["full_name"], changed["role"]) == ("Đinh Văn Tuấn", "viewer")
    await api.ok("PATCH", "/api/v1/users/cb1.viewer", token, {"password": "mật-khẩu-thứ-hai"})
    assert (await api.call("GET", "/api/v1/auth/me", token))[0] == 401  # its own sign-in ended
    assert (await api.login("cb1.viewer", "mật-khẩu-thứ-hai"))[0] == 200


async def test_the_audit_log_records_every_action_about_its_scope(api):
    await seed(api)
    first_at = await next_second()
    assert (await api.login("db1.admin", "not-the-password"))[0] == 401
    district = await api.token("db1.admin")
    await api.ok("POST", "/api/v1/auth/logout", district, status=204)
    district = await api.token("db1.admin")
    await api.ok("PATCH", "/api/v1/users/cb1.viewer", district, {"full_name": "Đinh Văn Tuấn"})
    mid_at = await next_second()

    organizer = await api.token("db1.org")
    times = {
        "starts_at": iso(now() - timedelta(minutes=10)),
        "ends_at": iso(now() + timedelta(hours=1)),
    }
    session = await api.ok("POST", "/api/v1/sessions", organizer,
                           {"title": "Huyện Ba Bể", "audience": ["DB1"], **times}, 201)  # fmt: skip
    sid = session["id"]
    hall = {"name": "Hội trường huyện", "kind": "hall", "unit": "DB1"}
    site = await api.ok("POST", f"/api/v1/sessions/{sid}/sites", organizer, hall, 201)
    token = (await api.ok("POST", f"/api/v1/sessions/{sid}/sites/{site['id']}/token", organizer))[
        "token"
    ]
    await api.ok("POST", f"/api/v1/sessions/{sid}/excuses", organizer,
                 {"member": "10000002", "reason": "ốm"}, 201)  # fmt: skip
    await api.ok("DELETE", f"/api/v1/sessions/{sid}/excuses/10000002", organizer, status=204)
    event = checkin("10000001")
    void = {"type": "void", "id": str(uuid.uuid4()), "target": event["id"]}
    for item in (event, void):
        answer = await api.ok("POST", f"/api/v1/sessions/{sid}/checkins", token, {"items": [item]})
        assert answer["results"][0]["result"] == "accepted", answer
    await api.ok("POST", f"/api/v1/sessions/{sid}/close", organizer)

    # another district's session, by the admin token: not about DB1
    other = await api.ok("POST", "/api/v1/sessions", ADMIN,
                         {"title": "Huyện Na Rì", "audience": ["DB2"], **times}, 201)  # fmt: skip
    await api.ok("POST", f"/api/v1/sessions/{other['id']}/excuses", ADMIN,
                 {"member": "10000005", "reason": "đi công tác"}, 201)  # fmt: skip

    entries = (await api.ok("GET", "/api/v1/audit"))["entries"]
    assert {e["action"] for e in entries} >= ACTIONS
    ats = [datetime.fromisoformat(e["at"]) for e in entries]
    assert ats == sorted(ats, reverse=True), "newest first"
    for entry in entries:
        assert entry["user"], entry
        if entry["action"] != "checkin_voided":  # read from the void event: no address kept
            assert entry["address"] == "127.0.0.1", entry
    users = {(e["action"], e["user"]) for e in entries}
    assert {("roster_imported", "admin-token"), ("user_created", "admin-token"),
            ("login_failed", "db1.admin"), ("logout", "db1.admin"),
            ("user_changed", "db1.admin"), ("session_created", "db1.org"),
            ("site_token_reset", "db1.org"), ("excuse_withdrawn", "db1.org"),
            ("checkin_voided", f"site:{site['id']}"),
            ("session_closed", "db1.org")} <= users  # fmt: skip
    voided = next(e for e in entries if e["action"] == "checkin_voided")
    assert (voided["session"], voided["target"]) == (sid, "10000001")

    async def audit(query: str, token: str = ADMIN) -> list[dict[str, Any]]:
        return (await api.ok("GET", f"/api/v1/audit?{query}", token))["entries"]

    assert {e["action"] for e in await audit("action=login")} == {"login"}
    assert {e["user"] for e in await audit("user=db1.org")} == {"db1.org"}
    in_session = await audit(f"session={sid}")
    assert {e["session"] for e in in_session} == {sid}
    assert {e["action"] for e in in_session} >= {
        "session_created", "site_created", "site_token_reset", "excuse_recorded",
        "excuse_withdrawn", "checkin_voided", "session_closed"}  # fmt: skip
    since = await audit(f"from={iso(mid_at)}")
    assert since and all(datetime.fromisoformat(e["at"]) >= mid_at for e in since)
    assert len(since) < len(entries)
    until = await audit(f"to={iso(mid_at)}&from={iso(first_at)}")
    assert until and all(first_at <= datetime.fromisoformat(e["at"]) < mid_at for e in until)
    assert {e["action"] for e in until} == {"login_failed", "login", "logout", "user_changed"}
    tomorrow = (now() + timedelta(days=1)).date().isoformat()
    assert await audit(f"from={tomorrow}") == []
    assert await audit("limit=3") == entries[:3]
    for bad in ("limit=0", "limit=10001", "session=abc", "from=yesterday"):
        status, body, _ = await api.call("GET", f"/api/v1/audit?{bad}")
        assert status == 400, (bad, body)

    # the CSV holds the same rows
    status, raw, response = await api.call("GET", "/api/v1/audit.csv")
    assert status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries, strict=True):
        assert row == {k: "" if v is None else str(v) for k, v in entry.items()}
    status, raw, _ = await api.call("GET", f"/api/v1/audit.csv?session={sid}&action=checkin_voided")
    assert len(list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))) == 1

    # DB1's admin sees the entries about DB1 only
    district = await api.token("db1.admin")
    theirs = await audit("", district)
    for entry in theirs:
        conforms(entry, "AuditEntry")
    for user in (await api.ok("GET", "/api/v1/users", district))["users"]:
        conforms(user, "User")
    assert theirs and {e["session"] for e in theirs} <= {sid, None}
    assert {e["action"] for e in theirs} >= ACTIONS - {"roster_imported"}
    logins = {e["target"] for e in theirs if e["action"] in ("login", "user_created")}
    assert "db2.admin" not in logins and "db1.org" in logins
    assert await audit(f"session={other['id']}", district) == []
    status, raw, _ = await api.call("GET", "/api/v1/audit.csv", district)
    assert len(list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))) == len(theirs)


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(tmp_path):
    """With STREAMSVC_TRUSTED_PROXIES naming the proxy, X-Forwarded-For is the client: one
    address's 20 failures lock that address only, and the audit log names it."""
    server = BareServerProcess(
        f"sqlite:///{tmp_path / 'streamsvc.db'}",
        tmp_path / "server.log",
        admin_token=ADMIN,
        env={"STREAMSVC_TRUSTED_PROXIES": "127.0.0.1"},
    )
    await server.start_async()
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, server.url)
            await seed(api, USERS[:1])
            for i in range(20):
                forwarded = {"X-Forwarded-For": "10.9.9.9, 203.0.113.7"}  # last hop counts
                assert (await api.login(f"guess-{i}", "wrong-password", **forwarded))[0] == 401
            assert (await api.login("db1.admin", **{"X-Forwarded-For": "203.0.113.7"}))[0] == 429
            assert (await api.login("db1.admin", **{"X-Forwarded-For": "203.0.113.8"}))[0] == 200
            entries = (await api.ok("GET", "/api/v1/audit?action=login_failed"))["entries"]
            assert {e["address"] for e in entries} == {"203.0.113.7"}
            login = (await api.ok("GET", "/api/v1/audit?action=login"))["entries"]
            assert [e["address"] for e in login] == ["203.0.113.8"]
    finally:
        server.stop()
