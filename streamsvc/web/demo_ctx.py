"""Wiring `--demo` into the app: the demo reads nothing from the app, it is handed the store,
the URL the service is reached at and the admin token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from streamsvc.demo.run import prepare_demo
from streamsvc.web import keys

__all__ = ["demo_ctx"]

logger = logging.getLogger(__name__)


async def demo_ctx(app: web.Application) -> AsyncIterator[None]:
    """Seed and announce the demo at startup; its simulated coordinators run until shutdown."""
    settings = app[keys.settings_key]
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = settings.public_url or f"http://{host}:{settings.port}"
    token = settings.admin_token or app.get(keys.new_admin_token_key)
    coordinators = await prepare_demo(app[keys.store_key], base, token)
    if coordinators is None:
        yield
        return
    task = asyncio.create_task(coordinators)
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:  # a supervisor: the demo must not spoil the shutdown
        logger.exception("the demo's simulated coordinators failed")
