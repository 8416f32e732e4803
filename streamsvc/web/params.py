"""Path and query parameters shared by the handlers."""

from __future__ import annotations

from aiohttp import web

__all__ = ["session_id_param"]


def session_id_param(request: web.Request) -> int:
    """The `{sid}` of the path; a value that cannot be a session id is a 404, like an
    unknown session, so that probing ids learns nothing."""
    raw = request.match_info["sid"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound(reason=f"session {raw} does not exist")
    return int(raw)
