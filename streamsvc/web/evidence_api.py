"""HTTP handler for recording study evidence: JSON rows or a quiz platform's CSV as it is."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from streamsvc.domain.evidence import csv_rows
from streamsvc.services.evidence import EvidenceService
from streamsvc.web import keys
from streamsvc.web.api import _rows
from streamsvc.web.auth import caller
from streamsvc.web.jsonutil import json_response
from streamsvc.web.params import session_id_param

__all__ = ["evidence_key", "routes", "setup"]

routes = web.RouteTableDef()
evidence_key = web.AppKey("evidence", EvidenceService)
CSV_TYPES = ("text/csv", "application/csv")


def setup(app: web.Application) -> None:
    """Add the routes, and the service once the store is open (after the app's own context)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_evidence_ctx)


async def _evidence_ctx(app: web.Application) -> AsyncIterator[None]:
    app[evidence_key] = EvidenceService(app[keys.store_key], app[keys.access_key])
    yield


@routes.post("/api/v1/sessions/{sid}/evidence")
async def record_evidence(request: web.Request) -> web.Response:
    """`{"evidence": [...]}` or CSV whose header is matched loosely (no column is required
    by its exact name, so `_rows` is asked for none and `csv_rows` finds them)."""
    who = await caller(request)
    sid = session_id_param(request)
    rows = await _rows(request, "evidence", ())
    if request.content_type in CSV_TYPES:
        rows = csv_rows(rows)
    return json_response(await request.app[evidence_key].record(who, sid, rows))
