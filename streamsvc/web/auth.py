"""Who is asking: bearer tokens (a user's, the v1 admin token, a site's) turned into a
`Caller` with its scope, and the client's address for limits and the audit log.

What a caller may do is not decided here but in `domain/policy.py`; handlers ask through
`caller()` and `session_for()`.
"""

from __future__ import annotations

from aiohttp import web

from streamsvc.domain.models import Session, Site
from streamsvc.domain.policy import Caller, Principal
from streamsvc.errors import Forbidden, Unauthorized
from streamsvc.web import keys

__all__ = [
    "bearer",
    "caller",
    "client_address",
    "principal",
    "require_site",
    "revoke",
    "session_for",
]


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    return token.strip()


def client_address(request: web.Request) -> str | None:
    """The client's address: the peer's, or behind a trusted proxy the last address in
    X-Forwarded-For that is not itself a trusted proxy."""
    remote = request.remote
    trusted = {
        a.strip() for a in request.app[keys.settings_key].trusted_proxies.split(",") if a.strip()
    }
    if remote not in trusted:
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return remote


async def principal(request: web.Request) -> Principal:
    return await request.app[keys.accounts_key].principal(bearer(request))


async def caller(request: web.Request, need: str = "viewer") -> Caller:
    """The signed-in caller (user or admin token) with the role `need`; a site token here is
    403, no token or a bad one 401."""
    who = await principal(request)
    found = await request.app[keys.access_key].caller(who, client_address(request))
    found.allow(need)
    return found


async def session_for(
    request: web.Request, session_id: int, need: str = "viewer", *, whole_session: bool = False
) -> tuple[Caller, Session]:
    """The caller and the session they may see (else 404 exactly as for an unknown one)."""
    found = await caller(request)
    session = await request.app[keys.access_key].session(
        found, session_id, need, whole_session=whole_session
    )
    return found, session


async def require_site(request: web.Request, session_id: int) -> Site:
    """The site of a coordinator token (cached: this is the HTTP check-in path); a user's or
    the admin's token here is 403."""
    token = bearer(request)
    try:
        site = await request.app[keys.checkins_key].site_for_token(token)
    except Unauthorized:
        await request.app[keys.accounts_key].principal(token)  # 401 if it is nobody's
        raise Forbidden(
            "check-ins need the site's coordinator token, not a user's or the admin's"
        ) from None
    if site.session_id != session_id:
        raise Forbidden(f"this site token belongs to session {site.session_id}")
    return site


async def revoke(request: web.Request, revoked: list[str]) -> None:
    """Close what is open with revoked credentials (`site:<id>`, `token:<hash>`), on every
    instance."""
    if revoked:
        await request.app[keys.revocations_key].revoke(revoked)
