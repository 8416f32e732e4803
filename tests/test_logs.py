"""Logs: JSON lines a collector can parse, and never a token or a password in any line."""

from __future__ import annotations

import logging
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson
import pytest
from builders import MEMBERS, UNITS, checkin, iso, now
from streamsvc_clients.serverproc import ServerProcess

from streamsvc.logs import JsonFormatter, SecretFilter, redact_url


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("the store went away")
        except RuntimeError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("streamsvc.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_a_json_line_is_one_object_with_the_fields_a_collector_reads():
    line = JsonFormatter().format(_record("site %s: %s", 7, "Điểm cầu", exc=True, site=7))
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "streamsvc.test"
    assert entry["message"] == "site 7: Điểm cầu"
    assert entry["site"] == 7
    assert entry["ts"].endswith("+00:00")
    assert "RuntimeError: the store went away" in entry["exc"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///var/lib/streamsvc/db.sqlite", "sqlite:///var/lib/streamsvc/db.sqlite"),
        ("postgresql://app@db/streamsvc", "postgresql://app@db/streamsvc"),
        ("postgresql://app:s3cret-pw@db:5432/streamsvc", "postgresql://app:***@db:5432/streamsvc"),
        ("postgresql://app@db/streamsvc?password=s3cret-pw", "postgresql://app@db/streamsvc"),
        ("redis://:s3cret-pw@cache:6379/0", "redis://:***@cache:6379/0"),
        (None, ""),
    ],
)
def test_a_url_is_shown_without_its_password(url, shown):
    assert redact_url(url) == shown


def test_a_known_secret_is_masked_in_the_message_and_the_traceback():
    record = _record("connecting with %s", "tok-abcdef", exc=True)
    record.exc_info = (RuntimeError, RuntimeError("refused for tok-abcdef"), None)
    assert SecretFilter(["tok-abcdef", None, ""]).filter(record)
    formatted = JsonFormatter().format(record)
    assert "tok-abcdef" not in formatted
    assert "connecting with ***" in formatted


async def call(
    http: aiohttp.ClientSession, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, path, json=body, headers=headers) as r:
        return r.status, await r.json()


@pytest.mark.slow
async def test_a_real_server_logs_json_lines_and_no_token_or_password(
    database_url: str, tmp_path: Path
):
    admin = "adm-" + secrets.token_urlsafe(24)
    db_password = "pw-" + secrets.token_urlsafe(12)
    if database_url.startswith("postgresql"):
        # the test server trusts local connections, so a password in the URL is only carried
        parts = urlsplit(database_url)
        user, host = parts.netloc.split("@", 1)
        database_url = urlunsplit(parts._replace(netloc=f"{user}:{db_password}@{host}"))
    log = tmp_path / "server.log"
    server = ServerProcess(
        database_url,
        log,
        admin_token=admin,
        extra_args=["--log-level", "DEBUG", "--log-format", "json"],
    )
    await server.start_async()
    bad_tokens = ["bad-" + secrets.token_urlsafe(16) for _ in range(4)]
    user_password = "user-pw-" + secrets.token_urlsafe(12)
    try:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            assert (await call(http, "POST", "/api/v1/units", admin, {"units": UNITS}))[0] == 200
            members = {"members": MEMBERS}
            assert (await call(http, "POST", "/api/v1/members", admin, members))[0] == 200
            new = {
                "title": "Học tập Nghị quyết",
                "starts_at": iso(now() - timedelta(minutes=10)),
                "ends_at": iso(now() + timedelta(hours=2)),
                "audience": ["TU"],
            }
            status, session = await call(http, "POST", "/api/v1/sessions", admin, new)
            assert status == 201, session
            sid = session["id"]
            hall = {"name": "Hội trường", "kind": "hall", "unit": None, "capacity": None}
            status, site = await call(http, "POST", f"/api/v1/sessions/{sid}/sites", admin, hall)
            assert status == 201, site
            site_token = site["token"]

            async with http.ws_connect("/ws/checkin") as ws:
                await ws.send_json({"type": "hello", "token": site_token, "client": "d1"})
                assert (await ws.receive_json())["type"] == "welcome"
                await ws.send_json(checkin("10000001"))
                assert (await ws.receive_json())["type"] == "ack"
            async with http.ws_connect("/ws/checkin") as ws:
                await ws.send_json({"type": "hello", "token": bad_tokens[0], "client": "d2"})
                assert (await ws.receive_json())["code"] == "unauthorized"
            async with http.ws_connect("/ws/monitor") as ws:
                await ws.send_json({"type": "hello", "token": bad_tokens[1], "session": sid})
                assert (await ws.receive_json())["code"] == "unauthorized"
            assert (await call(http, "GET", "/api/v1/sessions", bad_tokens[2]))[0] == 401
            path = f"/api/v1/sessions/{sid}/checkins"
            items = {"items": [checkin("10000002")]}
            assert (await call(http, "POST", path, site_token, items))[0] == 200
            assert (await call(http, "GET", "/api/v1/sessions", site_token))[0] == 403
            assert (await call(http, "POST", path, bad_tokens[3], items))[0] == 401
            login = {"login": "nobody", "password": user_password}
            status, _ = await call(http, "POST", "/api/v1/auth/login", "", login)
            assert status in (401, 404)  # 404 until accounts exist
    finally:
        server.stop()

    text = log.read_text(encoding="utf-8")
    for secret in [admin, site_token, db_password, user_password, *bad_tokens]:
        assert secret not in text
    entries = [
        orjson.loads(line)
        for line in text.splitlines()
        if line.strip() and not line.startswith("--- start")  # the harness's own marker
    ]
    assert all({"ts", "level", "logger", "message"} <= entry.keys() for entry in entries)
    messages = [entry["message"] for entry in entries]
    assert any(m.startswith("serving: streamsvc") for m in messages)
    assert any(m == f"site {site['id']} connected from 127.0.0.1" for m in messages)
    assert sum(m.startswith("coordinator refused from") for m in messages) == 1
    assert "stopped" in messages
