"""orjson in and out: the check-in path is bound by JSON CPU time (PERFORMANCE.md)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from streamsvc.domain.models import Session, Site
from streamsvc.domain.timefmt import format_ts
from streamsvc.errors import InvalidInput

__all__ = [
    "NUL_MESSAGE",
    "dumps",
    "json_response",
    "loads",
    "read_json",
    "reject_nul",
    "session_json",
    "site_json",
]

loads = orjson.loads


def dumps(data: Any) -> str:
    return orjson.dumps(data).decode("utf-8")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", code="bad_json") from exc
    if b"\\u0000" in raw and _holds_nul(body):
        # PostgreSQL cannot store a NUL character: a 500, found by schemathesis
        raise InvalidInput(NUL_MESSAGE)
    return body


NUL_MESSAGE = "text must not contain the NUL character (\\u0000)"


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def reject_nul(text: str | None, name: str) -> str | None:
    """A query parameter as given, or a 400 if it holds NUL (PostgreSQL cannot store it)."""
    if text is not None and "\x00" in text:
        raise InvalidInput(NUL_MESSAGE, {"field": name})
    return text


def session_json(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "title": s.title,
        "starts_at": format_ts(s.starts_at),
        "ends_at": format_ts(s.ends_at),
        "audience": list(s.audience),
        "late_after_minutes": s.late_after_minutes,
        "makeup_for": s.makeup_for,
        "state": s.state,
        "closed_at": format_ts(s.closed_at),
        "expected": s.expected,
        "requires": {
            "reflection": s.requires.reflection,
            "quiz_pass": s.requires.quiz_pass,
            "quiz_max": s.requires.quiz_max,
        },
        "plans": None
        if s.plans is None
        else {"depth": s.plans.depth, "heads": s.plans.heads, "due": format_ts(s.plans.due)},
    }


def site_json(s: Site) -> dict[str, Any]:
    return {
        "id": s.id,
        "session": s.session_id,
        "name": s.name,
        "kind": s.kind,
        "unit": s.unit,
        "capacity": s.capacity,
    }
