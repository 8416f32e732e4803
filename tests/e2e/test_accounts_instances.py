"""Accounts across two real instances on one PostgreSQL and one Redis, behind nginx (the
harness of `deploy/trial`, as `test_instances.py` uses it): a sign-in made on one instance
holds on the other, a sign-out or a deactivation on one is refused on the other at once, and
the sign-in limits count failures on both. Behind nginx the limit per address sees each
client's own address (the instances trust nginx's X-Forwarded-For), so one client's guesses
do not lock out the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from builders import MEMBERS, UNITS
from conftest import ADMIN
from instances_harness import running_instances

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
PASSWORD = "mật-khẩu-của-huyện"
USERS = [
    {"login": "db1.admin", "full_name": "Hà Văn Khánh", "unit": "DB1", "role": "admin"},
    {"login": "db2.org", "full_name": "Bế Thị Lan", "unit": "DB2", "role": "organizer"},
]
# Two clients of nginx on loopback addresses of their own (Linux routes all of 127/8 to lo);
# neither is a trusted proxy, as a phone or an office PC is not.
GUESSER, NEIGHBOUR = "127.0.0.5", "127.0.0.6"


@pytest.fixture
async def cluster(tmp_path, redis_prefix, monkeypatch) -> Any:
    """Two seeded instances and nginx in front: yields {"a", "b", "proxy"} URLs."""
    async with running_instances(tmp_path, redis_prefix, monkeypatch, nginx="required") as c:
        a, b = c.urls
        async with aiohttp.ClientSession() as http:
            await seed(http, a)
        yield {"a": a, "b": b, "proxy": c.proxy}


async def seed(http: aiohttp.ClientSession, base: str) -> None:
    for path, body, status in [
        ("/api/v1/units", {"units": UNITS}, 200),
        ("/api/v1/members", {"members": MEMBERS}, 200),
        *[("/api/v1/users", {**u, "password": PASSWORD}, 201) for u in USERS],
    ]:
        async with http.post(base + path, json=body, headers=ADMIN_AUTH) as r:
            assert r.status == status, await r.text()


async def login(
    http: aiohttp.ClientSession, base: str, user: str, password: str = PASSWORD, **headers: str
) -> tuple[int, dict[str, Any], str | None]:
    """(status, body, Retry-After) of one sign-in."""
    body = {"login": user, "password": password}
    async with http.post(f"{base}/api/v1/auth/login", json=body, headers=headers) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


async def me(http: aiohttp.ClientSession, base: str, token: str) -> int:
    async with http.get(
        f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        return r.status


async def test_a_sign_in_on_one_instance_holds_on_the_other_until_signed_out(cluster):
    a, b = cluster["a"], cluster["b"]
    async with aiohttp.ClientSession() as http:
        status, body, _ = await login(http, a, "db1.admin")
        assert status == 200, body
        token = body["token"]
        assert await me(http, b, token) == 200
        async with http.get(f"{b}/api/v1/users", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
            assert [u["login"] for u in (await r.json())["users"]] == ["db1.admin"]
        # the live counts websocket on B takes the token too
        times = {"starts_at": "2026-05-22T07:30:00+07:00", "ends_at": "2026-05-22T11:30:00+07:00"}
        async with http.post(
            f"{a}/api/v1/sessions",
            json={"title": "Ba Bể", "audience": ["DB1"], **times},
            headers=ADMIN_AUTH,
        ) as r:
            assert r.status == 201, await r.text()
            sid = (await r.json())["id"]
        ws = await http.ws_connect(b.replace("http", "ws") + "/ws/monitor")
        await ws.send_json({"type": "hello", "token": token, "session": sid})
        answer = await asyncio.wait_for(ws.receive_json(), 10)
        assert answer["type"] == "snapshot", answer
        assert answer["live"]["expected"] == 4  # DB1's members only
        await ws.close()

        async with http.post(
            f"{a}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 204
        # at once: no wait, no retry
        assert await me(http, b, token) == 401
        assert await me(http, a, token) == 401


async def test_failed_sign_ins_on_both_instances_add_up(cluster):
    a, b = cluster["a"], cluster["b"]
    async with aiohttp.ClientSession() as http:
        for base in (a, b, a, b, b):
            status, body, _ = await login(http, base, "db1.admin", "not-the-password")
            assert (status, body["error"]["code"]) == (401, "bad_credentials")
        for base in (a, b):
            status, body, retry_after = await login(http, base, "db1.admin")
            assert (status, body["error"]["code"]) == (429, "too_many_attempts"), base
            assert retry_after is not None and 800 < int(retry_after) <= 900
        # the other login is not locked
        assert (await login(http, b, "db2.org"))[0] == 200


async def test_deactivation_on_one_instance_is_refused_on_the_other_at_once(cluster):
    a, b = cluster["a"], cluster["b"]
    async with aiohttp.ClientSession() as http:
        status, body, _ = await login(http, a, "db2.org")
        assert status == 200
        token = body["token"]
        assert await me(http, a, token) == 200
        async with http.patch(
            f"{b}/api/v1/users/db2.org", json={"active": False}, headers=ADMIN_AUTH
        ) as r:
            assert r.status == 200, await r.text()
        assert await me(http, a, token) == 401
        status, body, _ = await login(http, a, "db2.org")
        assert (status, body["error"]["code"]) == (401, "bad_credentials")


async def test_behind_nginx_the_limit_per_address_sees_each_client(cluster):
    proxy = cluster["proxy"]

    def client(address: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))

    async with client(GUESSER) as guesser, client(NEIGHBOUR) as neighbour:
        for i in range(20):
            # a forged X-Forwarded-For does not help: nginx appends the real address last
            status, _, _ = await login(
                guesser, proxy, f"guess-{i}", "wrong-password", **{"X-Forwarded-For": f"10.0.0.{i}"}
            )
            assert status == 401
        status, body, retry_after = await login(guesser, proxy, "db1.admin")
        assert (status, body["error"]["code"]) == (429, "too_many_attempts")
        assert retry_after is not None
        # another client behind the same nginx signs in
        status, body, _ = await login(neighbour, proxy, "db1.admin")
        assert status == 200, body

    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{cluster['b']}/api/v1/audit?action=login_failed", headers=ADMIN_AUTH
        ) as r:
            failed = (await r.json())["entries"]
        async with http.get(f"{cluster['a']}/api/v1/audit?action=login", headers=ADMIN_AUTH) as r:
            signed_in = (await r.json())["entries"]
    assert len(failed) == 20 and {e["address"] for e in failed} == {GUESSER}
    assert [e["address"] for e in signed_in] == [NEIGHBOUR]
