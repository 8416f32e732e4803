"""HTTP handlers for reconciled attendance, its exports, the absences report and the yearly
report.

The record lists are streamed: the status line goes out once the session is known, then the
body as it is produced. A failure after that can no longer become an error body, so the
connection is cut instead and the client sees a truncated download, not a complete-looking
file.

Every role sees them restricted to its scope: a session whose audience does not meet it is
404 (`session_for`), and the service keeps only the records of members in it. The v1 admin
token's scope is the whole tree, so its answers are those of v1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Literal

from aiohttp import web

from streamsvc.domain.reports import YearlyReport, parse_range
from streamsvc.services.attendance import AttendanceService, Format
from streamsvc.web import keys
from streamsvc.web.auth import caller, session_for
from streamsvc.web.jsonutil import json_response
from streamsvc.web.params import session_id_param

__all__ = ["attendance_ctx", "routes", "setup"]

routes = web.RouteTableDef()

_CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def setup(app: web.Application) -> None:
    """Add the routes, and the service once the store is open (after the app's own context)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(attendance_ctx)


async def attendance_ctx(app: web.Application) -> AsyncIterator[None]:
    service = AttendanceService(app[keys.store_key])
    app[keys.attendance_key] = service
    try:
        yield
    finally:
        await service.close()


async def _stream(request: web.Request, fmt: Format) -> web.StreamResponse:
    session_id = session_id_param(request)
    found, _ = await session_for(request, session_id)
    service = request.app[keys.attendance_key]
    rec = await service.load(session_id)
    response = web.StreamResponse(
        headers={"Content-Type": _CONTENT_TYPES[fmt], "Cache-Control": "no-store"}
    )
    if fmt != "json":
        response.headers["Content-Disposition"] = (
            f'attachment; filename="session-{session_id}-attendance.{fmt}"'
        )
    response.enable_chunked_encoding()
    await response.prepare(request)
    finished = False
    try:
        await service.export(rec, fmt, response, scope=found.scope.codes())
        finished = True
    except ConnectionResetError:
        return response  # the client went away; there is no one left to tell
    finally:
        if not finished and request.transport is not None:
            request.transport.close()
    await response.write_eof()
    return response


@routes.get("/api/v1/sessions/{sid}/attendance")
async def attendance(request: web.Request) -> web.StreamResponse:
    return await _stream(request, "json")


@routes.get("/api/v1/sessions/{sid}/attendance.csv")
async def attendance_csv(request: web.Request) -> web.StreamResponse:
    return await _stream(request, "csv")


@routes.get("/api/v1/sessions/{sid}/attendance.xlsx")
async def attendance_xlsx(request: web.Request) -> web.StreamResponse:
    return await _stream(request, "xlsx")


@routes.get("/api/v1/sessions/{sid}/summary")
async def summary(request: web.Request) -> web.Response:
    session_id = session_id_param(request)
    found, _ = await session_for(request, session_id)
    service = request.app[keys.attendance_key]
    by_unit, total = await service.summary(
        await service.load(session_id), scope=found.scope.codes()
    )
    return json_response(
        {
            "session": session_id,
            "units": [{"code": unit.code, "name": unit.name, **s.to_json()} for unit, s in by_unit],
            "total": total.to_json(),
        }
    )


@routes.get("/api/v1/reports/absences")
async def absences(request: web.Request) -> web.Response:
    found = await caller(request)
    service = request.app[keys.attendance_key]
    start, end = parse_range(request.query.get("from"), request.query.get("to"))
    report = await service.absences(
        start,
        end,
        scope=found.scope.codes(),
        visible=partial(request.app[keys.access_key].visible, found),
    )
    return json_response(report.to_json())


@routes.get("/api/v1/reports/yearly")
async def yearly(request: web.Request) -> web.Response:
    return json_response((await _yearly(request)).to_json())


@routes.get("/api/v1/reports/yearly.csv")
async def yearly_csv(request: web.Request) -> web.StreamResponse:
    return await _yearly_file(request, "csv")


@routes.get("/api/v1/reports/yearly.xlsx")
async def yearly_xlsx(request: web.Request) -> web.StreamResponse:
    return await _yearly_file(request, "xlsx")


async def _yearly(request: web.Request) -> YearlyReport:
    """The report of the caller's scope over the sessions it may see (a viewer's own)."""
    found = await caller(request)
    service = request.app[keys.attendance_key]
    start, end = parse_range(request.query.get("from"), request.query.get("to"))
    return await service.yearly(
        start,
        end,
        scope=found.scope.codes(),
        visible=partial(request.app[keys.access_key].visible, found),
    )


async def _yearly_file(request: web.Request, fmt: Literal["csv", "xlsx"]) -> web.StreamResponse:
    report = await _yearly(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": _CONTENT_TYPES[fmt],
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="yearly-report.{fmt}"',
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    finished = False
    try:
        await request.app[keys.attendance_key].write_yearly(report, fmt, response)
        finished = True
    except ConnectionResetError:
        return response
    finally:
        if not finished and request.transport is not None:
            request.transport.close()
    await response.write_eof()
    return response
