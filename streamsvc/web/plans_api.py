"""HTTP handlers for action plans: the owing units and their plans, recording and withdrawing
a plan, and the units that had not handed one in by a deadline (JSON and CSV).

Parse, call `PlanService`, serialise; who owes what is decided in `domain/plans.py`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web

from streamsvc.domain.models import ActionPlan, PlanRule
from streamsvc.domain.plans import UnitPlans
from streamsvc.domain.timefmt import format_ts, parse_ts
from streamsvc.errors import InvalidInput
from streamsvc.services.plans import PlanService
from streamsvc.web import keys
from streamsvc.web.auth import caller
from streamsvc.web.jsonutil import json_response, read_json, reject_nul
from streamsvc.web.params import session_id_param

__all__ = ["MISSING_COLUMNS", "plans_key", "routes", "setup"]

routes = web.RouteTableDef()
plans_key = web.AppKey("plans", PlanService)

#: The header of `/plans/missing.csv` (kinds joined with `;`, as the attendance flags are).
MISSING_COLUMNS: tuple[str, ...] = ("code", "name", "missing")
BOM = "\ufeff".encode()
# "+07:00" arrives as " 07:00" when a client did not encode the query's plus sign
_SPACED_OFFSET = re.compile(r" (\d\d:\d\d)$")


def setup(app: web.Application) -> None:
    """Add the routes, and the service once the store is open (after the app's own context)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_plans_ctx)


async def _plans_ctx(app: web.Application) -> AsyncIterator[None]:
    app[plans_key] = PlanService(app[keys.store_key], app[keys.access_key])
    yield


def plan_json(plan: ActionPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "handed_in_at": format_ts(plan.handed_in_at),
        "recorded_by": plan.recorded_by,
        "note": plan.note,
    }


def rule_json(rule: PlanRule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {"depth": rule.depth, "heads": rule.heads, "due": format_ts(rule.due)}


def unit_json(unit: UnitPlans, due: datetime | None) -> dict[str, Any]:
    return {
        "code": unit.code,
        "name": unit.name,
        "committee": plan_json(unit.plans.get("committee")),
        "head": plan_json(unit.plans.get("head")),
        "owed": list(unit.owed),
        "missing": unit.missing(),
        "late": unit.late(due),
    }


def _path(request: web.Request) -> tuple[int, str, str]:
    sid = session_id_param(request)
    unit = reject_nul(request.match_info["unit"], "unit") or ""
    kind = reject_nul(request.match_info["kind"], "kind") or ""
    return sid, unit, kind


def _at(request: web.Request) -> datetime | None:
    raw = request.query.get("at")
    if raw is None or raw == "":
        return None
    at = parse_ts(_SPACED_OFFSET.sub(r"+\1", raw))
    if at is None:
        raise InvalidInput(
            "at must be an RFC 3339 time with an offset, e.g. 2026-06-30T17:00:00+07:00",
            {"field": "at"},
        )
    return at


@routes.get("/api/v1/sessions/{sid}/plans")
async def list_plans(request: web.Request) -> web.Response:
    who = await caller(request)
    board = await request.app[plans_key].board(who, session_id_param(request))
    due = board.rule.due if board.rule else None
    return json_response(
        {"rule": rule_json(board.rule), "units": [unit_json(u, due) for u in board.units]}
    )


@routes.get("/api/v1/sessions/{sid}/plans/missing")
async def missing_plans(request: web.Request) -> web.Response:
    who = await caller(request)
    at, units = await request.app[plans_key].missing(who, session_id_param(request), _at(request))
    return json_response(
        {
            "at": format_ts(at),
            "units": [{"code": u.code, "name": u.name, "missing": u.missing(at)} for u in units],
        }
    )


@routes.get("/api/v1/sessions/{sid}/plans/missing.csv")
async def missing_plans_csv(request: web.Request) -> web.Response:
    who = await caller(request)
    sid = session_id_param(request)
    at, units = await request.app[plans_key].missing(who, sid, _at(request))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MISSING_COLUMNS)
    for unit in units:
        writer.writerow((unit.code, unit.name, ";".join(unit.missing(at))))
    return web.Response(
        body=BOM + buffer.getvalue().encode(),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="session-{sid}-plans-missing.csv"',
            "Cache-Control": "no-store",
        },
    )


@routes.put("/api/v1/sessions/{sid}/plans/{unit}/{kind}")
async def record_plan(request: web.Request) -> web.Response:
    who = await caller(request)
    sid, unit, kind = _path(request)
    # the body is optional: an empty PUT records the plan as handed in now
    body = await read_json(request) if (await request.read()).strip() else {}
    plan = await request.app[plans_key].record(who, sid, unit, kind, body)
    return json_response(plan_json(plan))


@routes.delete("/api/v1/sessions/{sid}/plans/{unit}/{kind}")
async def withdraw_plan(request: web.Request) -> web.Response:
    who = await caller(request)
    sid, unit, kind = _path(request)
    await request.app[plans_key].withdraw(who, sid, unit, kind)
    return web.Response(status=204)
