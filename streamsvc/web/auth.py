"""Bearer tokens: the admin token for the organizer API, a site token for check-ins."""

from __future__ import annotations

from aiohttp import web

from streamsvc.domain.models import Site
from streamsvc.errors import Forbidden, Unauthorized
from streamsvc.services.tokens import token_matches
from streamsvc.web import keys

__all__ = ["bearer", "require_admin", "require_site"]


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    return token.strip()


async def require_admin(request: web.Request) -> None:
    token = bearer(request)
    if token_matches(token, request.app[keys.admin_hash_key]):
        return
    try:
        await request.app[keys.checkins_key].site_for_token(token)
    except Unauthorized:
        raise Unauthorized("bad admin token") from None
    raise Forbidden("a site token cannot be used here; use the admin token")


async def require_site(request: web.Request, session_id: int) -> Site:
    token = bearer(request)
    if token_matches(token, request.app[keys.admin_hash_key]):
        raise Forbidden("check-ins need the site's coordinator token, not the admin token")
    site = await request.app[keys.checkins_key].site_for_token(token)
    if site.session_id != session_id:
        raise Forbidden(f"this site token belongs to session {site.session_id}")
    return site
