"""HTTP handlers for the roster, sessions, sites, excuses and check-ins. Parse, call, answer."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web

from streamsvc.errors import InvalidInput
from streamsvc.web import keys
from streamsvc.web.auth import caller, require_site, revoke
from streamsvc.web.jsonutil import (
    NUL_MESSAGE,
    json_response,
    read_json,
    reject_nul,
    session_json,
    site_json,
)
from streamsvc.web.params import session_id_param

__all__ = ["routes"]

routes = web.RouteTableDef()

MAX_PARAM = 2**31 - 1


def _int_param(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number", {"field": name}) from None
    if abs(number) > MAX_PARAM:
        # past 64 bits neither store can take it: a 500, found by a test beside schemathesis
        raise InvalidInput(f"{name} must be at most {MAX_PARAM}", {"field": name})
    return number


async def _rows(request: web.Request, key: str, columns: tuple[str, ...]) -> list[Any]:
    """Rows of an import: `{"<key>": [...]}` as JSON or a CSV file with a header line."""
    if request.content_type in ("text/csv", "application/csv"):
        raw = await request.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("the CSV file must be UTF-8", code="bad_csv") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in columns if c not in header]
        if missing:
            raise InvalidInput(
                f"the CSV header must be {','.join(columns)}; missing {', '.join(missing)}",
                code="bad_csv",
            )
        if "\x00" in text:
            raise InvalidInput(NUL_MESSAGE, code="bad_csv")
        reader.fieldnames = header
        try:
            return [dict(row) for row in reader]
        except csv.Error as exc:
            raise InvalidInput(f"bad CSV: {exc}", code="bad_csv") from None
    body = await read_json(request)
    rows = body.get(key) if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise InvalidInput(f'the body must be {{"{key}": [...]}} or a CSV file (text/csv)')
    return rows


@routes.post("/api/v1/units")
async def import_units(request: web.Request) -> web.Response:
    who = await caller(request, "admin")
    rows = await _rows(request, "units", ("code", "name", "parent"))
    return json_response(await request.app[keys.roster_key].import_units(who, rows))


@routes.get("/api/v1/units")
async def list_units(request: web.Request) -> web.Response:
    units = await request.app[keys.roster_key].list_units(await caller(request))
    return json_response(
        {"units": [{"code": u.code, "name": u.name, "parent": u.parent} for u in units]}
    )


@routes.post("/api/v1/members")
async def import_members(request: web.Request) -> web.Response:
    who = await caller(request, "admin")
    rows = await _rows(request, "members", ("code", "full_name", "unit"))
    return json_response(await request.app[keys.roster_key].import_members(who, rows))


@routes.get("/api/v1/members")
async def search_members(request: web.Request) -> web.Response:
    who = await caller(request)
    q = request.query
    members, total = await request.app[keys.roster_key].search_members(
        who,
        reject_nul(q.get("unit"), "unit") or None,
        reject_nul(q.get("q"), "q"),
        _int_param(q.get("limit"), "limit", 50),
        _int_param(q.get("offset"), "offset", 0),
    )
    return json_response(
        {
            "members": [
                {"code": m.code, "full_name": m.full_name, "unit": m.unit} for m in members
            ],
            "total": total,
        }
    )


@routes.post("/api/v1/sessions")
async def create_session(request: web.Request) -> web.Response:
    who = await caller(request, "organizer")
    session = await request.app[keys.sessions_key].create_session(who, await read_json(request))
    return json_response(session_json(session), status=201)


@routes.get("/api/v1/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    sessions = await request.app[keys.sessions_key].list_sessions(await caller(request))
    return json_response({"sessions": [session_json(s) for s in sessions]})


@routes.get("/api/v1/sessions/{sid}")
async def get_session(request: web.Request) -> web.Response:
    sid = session_id_param(request)
    session = await request.app[keys.sessions_key].session(await caller(request), sid)
    return json_response(session_json(session))


@routes.patch("/api/v1/sessions/{sid}")
async def update_session(request: web.Request) -> web.Response:
    """Change a session's `requires` and `plans` (organizer of the whole audience)."""
    who = await caller(request)
    sid = session_id_param(request)
    body = await read_json(request)
    session = await request.app[keys.sessions_key].update_session(who, sid, body)
    return json_response(session_json(session))


@routes.post("/api/v1/sessions/{sid}/close")
async def close_session(request: web.Request) -> web.Response:
    who = await caller(request)
    session = await request.app[keys.sessions_key].close_session(who, session_id_param(request))
    return json_response(session_json(session))


SITE_COLUMNS = ("name", "kind", "unit", "capacity")


@routes.post("/api/v1/sessions/{sid}/sites")
async def create_site(request: web.Request) -> web.Response:
    """One site (`{"name", ...}`), or many: `{"sites": [...]}` or a CSV file."""
    who = await caller(request)
    sid = session_id_param(request)
    sessions = request.app[keys.sessions_key]
    if request.content_type in ("text/csv", "application/csv"):
        rows = await _rows(request, "sites", SITE_COLUMNS)
    else:
        body = await read_json(request)
        if not (isinstance(body, dict) and "sites" in body):
            site, token = await sessions.create_site(who, sid, body)
            request.app[keys.live_key].site_added(site)
            return json_response({**site_json(site), "token": token}, status=201)
        rows = body["sites"]
        if not isinstance(rows, list):
            raise InvalidInput('sites must be a list: {"sites": [...]}', {"field": "sites"})
    created = await sessions.create_sites(who, sid, rows)
    request.app[keys.live_key].sites_added([site for site, _ in created])
    return json_response(
        {
            "sites": [
                {
                    "id": s.id,
                    "name": s.name,
                    "kind": s.kind,
                    "unit": s.unit,
                    "capacity": s.capacity,
                    "token": token,
                }
                for s, token in created
            ]
        },
        status=201,
    )


@routes.get("/api/v1/sessions/{sid}/sites")
async def list_sites(request: web.Request) -> web.Response:
    who = await caller(request)
    sites = await request.app[keys.sessions_key].list_sites(who, session_id_param(request))
    return json_response({"sites": [site_json(s) for s in sites]})


@routes.post("/api/v1/sessions/{sid}/excuses")
async def add_excuse(request: web.Request) -> web.Response:
    who = await caller(request)
    excuse = await request.app[keys.sessions_key].add_excuse(
        who, session_id_param(request), await read_json(request)
    )
    return json_response(excuse, status=201)


@routes.delete("/api/v1/sessions/{sid}/excuses/{member}")
async def withdraw_excuse(request: web.Request) -> web.Response:
    who = await caller(request)
    member = reject_nul(request.match_info["member"], "member") or ""
    await request.app[keys.sessions_key].withdraw_excuse(who, session_id_param(request), member)
    return web.Response(status=204)


@routes.post("/api/v1/sessions/{sid}/sites/{site}/token")
async def reset_site_token(request: web.Request) -> web.Response:
    """A new coordinator token; the old one is refused at once, its sockets closed 4401."""
    who = await caller(request)
    site_id = _int_param(request.match_info["site"], "site", 0)
    token = await request.app[keys.sessions_key].reset_site_token(
        who, session_id_param(request), site_id
    )
    await revoke(request, [f"site:{site_id}"])
    return json_response({"token": token})


@routes.post("/api/v1/sessions/{sid}/checkins")
async def post_checkins(request: web.Request) -> web.Response:
    site = await require_site(request, session_id_param(request))
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise InvalidInput('the body must be {"items": [event, ...]}')
    results = await request.app[keys.checkins_key].record(site, body["items"])
    return json_response({"results": results})
