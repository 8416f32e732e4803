"""schemathesis against a real `streamsvc serve` on each store: every operation of
`/api/v1/openapi.json`, with the token it needs and ids that exist, gets only documented
statuses and bodies of the documented shape, never a 500.

One server per store for the whole module (the operations share it); a roster, an open
session with a site and a session to close are prepared first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
import schemathesis
from conftest import ADMIN, create_pg_database, drop_pg_database, require_postgres
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from streamsvc_clients.serverproc import ServerProcess

from streamsvc.web.openapi import openapi_document

pytestmark = pytest.mark.slow

DOCUMENT = openapi_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("text/csv")
def csv_body(ctx: object, value: object) -> bytes:
    """A generated CSV body is a string (the document's schema for it)."""
    return str(value).encode("utf-8")


@dataclass(frozen=True)
class World:
    url: str
    session: int  # open, with a site
    to_close: int
    site_token: str

    def token_for(self, path: str, method: str) -> str | None:
        security = DOCUMENT["paths"][path][method].get("security") or [{}]
        scheme = next(iter(security[0]), None)
        return {"adminToken": ADMIN, "siteToken": self.site_token}.get(scheme or "")


def prepare(url: str) -> World:
    admin = {"Authorization": f"Bearer {ADMIN}"}

    def post(path: str, body: object) -> dict:
        r = requests.post(url + path, json=body, headers=admin, timeout=10)
        assert r.status_code in (200, 201), r.text
        return r.json()

    post(
        "/api/v1/units",
        {
            "units": [
                {"code": "P", "name": "Province", "parent": None},
                {"code": "C1", "name": "Cell 1", "parent": "P"},
                {"code": "C2", "name": "Cell 2", "parent": "P"},
            ]
        },
    )
    post(
        "/api/v1/members",
        {
            "members": [
                {"code": f"M{i}", "full_name": f"Member {i}", "unit": "C1" if i % 2 else "C2"}
                for i in range(6)
            ]
        },
    )
    now = datetime.now(UTC)
    times = {
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "audience": ["P"],
    }
    session = post("/api/v1/sessions", {"title": "Open", **times})["id"]
    to_close = post("/api/v1/sessions", {"title": "To close", **times})["id"]
    site = post(f"/api/v1/sessions/{session}/sites", {"name": "Hall", "kind": "hall"})
    return World(url, session, to_close, site["token"])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    if request.param == "sqlite":
        database = f"sqlite:///{tmp / 'streamsvc.db'}"
    else:
        require_postgres()
        database = asyncio.run(create_pg_database())
        request.addfinalizer(lambda: asyncio.run(drop_pg_database(database)))
    server = ServerProcess(database, tmp / "server.log", admin_token=ADMIN)
    server.start()
    try:
        yield prepare(server.url)
    finally:
        server.stop()
    assert "Traceback" not in (tmp / "server.log").read_text(), "the server logged an error"


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_answer_is_documented(case: schemathesis.Case, world: World) -> None:
    path, method = case.operation.path, case.operation.method.lower()
    if "sid" in (case.path_parameters or {}) and path.startswith("/api/v1/sessions/"):
        case.path_parameters["sid"] = world.to_close if path.endswith("/close") else world.session
    headers = {}
    token = world.token_for(path, method)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    case.call_and_validate(base_url=world.url, headers=headers, checks=CHECKS)
