"""HTTP endpoints for a site's check-in page: its roster (site token) and its service worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from streamsvc.services.site_roster import SiteRosterService
from streamsvc.web import keys
from streamsvc.web.auth import require_site
from streamsvc.web.jsonutil import json_response
from streamsvc.web.pages import STATIC
from streamsvc.web.params import session_id_param

__all__ = ["roster_key", "routes", "setup"]

routes = web.RouteTableDef()
roster_key = web.AppKey("site_roster", SiteRosterService)


def setup(app: web.Application) -> None:
    """Add the routes, and the service once the store is open (after the app's own context)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_site_roster_ctx)


async def _site_roster_ctx(app: web.Application) -> AsyncIterator[None]:
    app[roster_key] = SiteRosterService(
        app[keys.store_key], app[keys.live_key], app[keys.access_key]
    )
    yield


@routes.get("/api/v1/sessions/{sid}/roster")
async def site_roster(request: web.Request) -> web.Response:
    site = await require_site(request, session_id_param(request))
    roster = await request.app[roster_key].roster(site)
    response = json_response(roster.to_json())
    response.headers["Cache-Control"] = "no-store"
    # a province-wide list is megabytes of JSON; phones on a slow link take it gzipped
    response.enable_compression()
    return response


@routes.get("/checkin-sw.js")
async def checkin_worker(request: web.Request) -> web.Response:
    """The page's service worker, served from the root so that it may control `/checkin`
    (a worker controls only pages under its own path)."""
    return web.Response(
        body=(STATIC / "checkin-sw.js").read_bytes(),
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
