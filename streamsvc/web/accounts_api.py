"""HTTP handlers for signing in and out, users, and the audit log. Parse, call, answer."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from aiohttp import web

from streamsvc.domain.timefmt import format_ts
from streamsvc.errors import InvalidInput
from streamsvc.exports.audit import audit_json, write_audit_csv
from streamsvc.services.accounts import user_json
from streamsvc.services.audit import AuditService, audit_range
from streamsvc.web import keys
from streamsvc.web.auth import caller, client_address, revoke
from streamsvc.web.jsonutil import json_response, read_json, reject_nul

__all__ = ["routes"]

routes = web.RouteTableDef()

#: Entries in one JSON answer at most (`limit`); the CSV holds every entry in the range.
MAX_AUDIT_PAGE = 10_000


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    token, expires_at, user = await request.app[keys.accounts_key].login(
        await read_json(request), client_address(request)
    )
    response = json_response(
        {"token": token, "expires_at": format_ts(expires_at), "user": user_json(user)}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.post("/api/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    who = await caller(request)
    await request.app[keys.accounts_key].logout(who)
    if who.who.token_hash is not None:
        await revoke(request, [f"token:{who.who.token_hash}"])
    return web.Response(status=204)


@routes.get("/api/v1/auth/me")
async def me(request: web.Request) -> web.Response:
    """Who the bearer token is: what the pages show in their header and decide by."""
    who = await caller(request)
    unit = who.who.unit
    units = await request.app[keys.access_key].units()
    return json_response(
        {
            "actor": who.who.actor,
            "role": who.who.role,
            "unit": unit,
            "unit_name": units[unit].name if unit in units else None,
            "user": user_json(who.who.user) if who.who.user else None,
        }
    )


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> web.Response:
    users = await request.app[keys.accounts_key].list_users(await caller(request))
    return json_response({"users": [user_json(u) for u in users]})


@routes.post("/api/v1/users")
async def create_user(request: web.Request) -> web.Response:
    who = await caller(request)
    units = set(await request.app[keys.access_key].units())
    user = await request.app[keys.accounts_key].create_user(who, await read_json(request), units)
    return json_response(user_json(user), status=201)


@routes.patch("/api/v1/users/{login}")
async def change_user(request: web.Request) -> web.Response:
    who = await caller(request)
    login = reject_nul(request.match_info["login"], "login") or ""
    units = set(await request.app[keys.access_key].units())
    user, revoked = await request.app[keys.accounts_key].update_user(
        who, login, await read_json(request), units
    )
    await revoke(request, [f"token:{h}" for h in revoked])
    return json_response(user_json(user))


class AuditQuery(TypedDict):
    """The audit log's filters, as `AuditService.entries` takes them."""

    start: datetime | None
    end: datetime | None
    session_id: int | None
    actor: str | None
    action: str | None


def _audit_query(request: web.Request) -> AuditQuery:
    q = request.query
    start, end = audit_range(reject_nul(q.get("from"), "from"), reject_nul(q.get("to"), "to"))
    session = q.get("session") or None
    if session is not None and not (session.isdigit() and len(session) <= 18):
        raise InvalidInput("session must be a session id", {"field": "session"})
    return AuditQuery(
        start=start,
        end=end,
        session_id=int(session) if session else None,
        actor=reject_nul(q.get("user"), "user") or None,
        action=reject_nul(q.get("action"), "action") or None,
    )


@routes.get("/api/v1/audit")
async def audit(request: web.Request) -> web.Response:
    who = await caller(request, "admin")
    query = _audit_query(request)
    raw_limit = request.query.get("limit") or "1000"
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_AUDIT_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_AUDIT_PAGE}", {"field": "limit"})
    limit = int(raw_limit)
    entries = []
    async for entry in AuditService(request.app[keys.store_key]).entries(who, **query):
        entries.append(audit_json(entry))
        if len(entries) >= limit:
            break
    return json_response({"entries": entries})


@routes.get("/api/v1/audit.csv")
async def audit_csv(request: web.Request) -> web.StreamResponse:
    who = await caller(request, "admin")
    query = _audit_query(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="audit.csv"',
            "Cache-Control": "no-store",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    entries = AuditService(request.app[keys.store_key]).entries(who, **query)
    await write_audit_csv(entries, response.write)
    await response.write_eof()
    return response
