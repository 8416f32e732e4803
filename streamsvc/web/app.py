"""`create_app(settings)`: the one place that picks backends and wires the service together."""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from streamsvc.bus import open_bus
from streamsvc.config import Settings
from streamsvc.errors import StreamsvcError
from streamsvc.ports import Store
from streamsvc.services.access import AccessService
from streamsvc.services.accounts import AccountService
from streamsvc.services.admission import Admission
from streamsvc.services.checkins import CheckinService, GroupCommitter
from streamsvc.services.live import LiveHub
from streamsvc.services.revocations import Revocations
from streamsvc.services.roster import RosterService
from streamsvc.services.sessions import SessionService
from streamsvc.services.tokens import hash_token, new_token
from streamsvc.storage import open_store
from streamsvc.web import keys
from streamsvc.web.accounts_api import routes as accounts_routes
from streamsvc.web.api import routes as api_routes
from streamsvc.web.attendance_api import setup as setup_attendance
from streamsvc.web.errors import error_middleware
from streamsvc.web.evidence_api import setup as setup_evidence
from streamsvc.web.fanout import Fanout
from streamsvc.web.jsonutil import json_response
from streamsvc.web.metrics import setup as setup_metrics
from streamsvc.web.openapi import routes as openapi_routes
from streamsvc.web.pages import STATIC
from streamsvc.web.pages import routes as page_routes
from streamsvc.web.plans_api import setup as setup_plans
from streamsvc.web.security import setup as setup_security
from streamsvc.web.site_api import setup as setup_site_api
from streamsvc.web.ws_checkin import checkin_ws
from streamsvc.web.ws_monitor import live_http, live_sites_http, monitor_ws

__all__ = ["create_app", "ensure_admin_token"]

logger = logging.getLogger(__name__)

ADMIN_HASH = "admin_token_hash"


async def ensure_admin_token(store: Store, given: str | None) -> tuple[str, str | None]:
    """(hash to check against, a newly made token to print once or None).

    A token given in the settings wins and its hash replaces any stored one; otherwise
    the stored hash is kept; on a first start without either, a token is made.
    """
    if given:
        digest = hash_token(given)
        if await store.get_setting(ADMIN_HASH) != digest:
            await store.set_setting(ADMIN_HASH, digest)
        return digest, None
    stored = await store.get_setting(ADMIN_HASH)
    if stored:
        return stored, None
    token = new_token()
    await store.set_setting(ADMIN_HASH, hash_token(token))
    return hash_token(token), token


async def healthz(request: web.Request) -> web.Response:
    body = {"status": "ok", "database": "ok", "redis": "disabled"}
    status = 200
    try:
        await request.app[keys.store_key].ping()
    except StreamsvcError as exc:
        body["database"] = f"failing: {exc.message}"
        status = 503
    redis_state = await request.app[keys.live_key].bus_health()
    body["redis"] = redis_state
    if redis_state not in ("ok", "disabled"):
        status = 503
    if status != 200:
        body["status"] = "failing"
    return json_response(body, status=status)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[keys.settings_key] = settings
    app[keys.sockets_key] = weakref.WeakSet()
    app.cleanup_ctx.append(_services)
    setup_security(app)
    if settings.demo:
        from streamsvc.web.demo_ctx import demo_ctx

        app.cleanup_ctx.append(demo_ctx)
    app.router.add_get("/healthz", healthz)
    setup_metrics(app)
    app.router.add_get("/ws/checkin", checkin_ws)
    app.router.add_get("/ws/monitor", monitor_ws)
    app.router.add_get("/api/v1/sessions/{sid}/live", live_http)
    app.router.add_get("/api/v1/sessions/{sid}/live/sites", live_sites_http)
    app.router.add_routes(api_routes)
    app.router.add_routes(accounts_routes)
    setup_attendance(app)
    setup_evidence(app)
    setup_site_api(app)
    setup_plans(app)
    app.router.add_routes(page_routes)
    app.router.add_routes(openapi_routes)
    app.router.add_static("/static/", STATIC, append_version=True)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings_key]
    store = open_store(settings.database)
    await store.open()
    try:
        await store.migrate()
        admin_hash, new_admin = await ensure_admin_token(store, settings.admin_token)
        if new_admin:
            app[keys.new_admin_token_key] = new_admin
            print(
                f"streamsvc: admin token (shown once, keep it): {new_admin}",
                file=sys.stderr,
                flush=True,
            )
        app[keys.store_key] = store
        app[keys.admin_hash_key] = admin_hash
        hub = LiveHub(
            store, app.get(keys.bus_key) or open_bus(settings.redis, settings.redis_prefix)
        )
        await hub.start()
        app[keys.live_key] = hub
        app[keys.fanout_key] = Fanout(hub)
        committer = GroupCommitter(store, writers=store.writers, on_committed=hub.on_committed)
        app[keys.committer_key] = committer
        rate = settings.connect_rate
        app[keys.admission_key] = Admission(rate, rate, backlog=committer.backlog)
        app[keys.roster_key] = RosterService(store)
        app[keys.sessions_key] = SessionService(store)
        checkins = app[keys.checkins_key] = CheckinService(store, committer)
        app[keys.accounts_key] = AccountService(store, admin_hash, checkins.site_for_token)
        app[keys.access_key] = AccessService(store)
        await committer.start()
        revocations = Revocations(
            app.get(keys.control_bus_key)
            or open_bus(settings.redis, f"{settings.redis_prefix}:control")
        )
        revocations.on_revoked.append(app[keys.checkins_key].forget_revoked)
        await revocations.start()
        app[keys.revocations_key] = revocations
        yield
    finally:
        sockets = app[keys.sockets_key]
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        if keys.committer_key in app:
            await app[keys.committer_key].stop()
        if keys.live_key in app:
            await app[keys.live_key].stop()
        if keys.revocations_key in app:
            await app[keys.revocations_key].stop()
        await store.close()
