"""The web pages: plain HTML files under `static/`, with the labels embedded at serve time.

An HTML file holds the placeholder `__LABELS__` (inside a `<script type="application/json"
id="labels">` element); it is replaced with the JSON of `labels.LABELS`, so every label lives
in one Python module and a page needs no extra request to get them.

The organizer's pages share their sign-in form and the bar saying who is signed in: a line
`<!--include NAME-->` is replaced with the file `static/NAME`, written once for all of them.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import orjson
from aiohttp import web

from streamsvc.web.labels import LABELS

__all__ = ["STATIC", "render", "routes"]

STATIC = Path(__file__).parent / "static"
routes = web.RouteTableDef()
INCLUDE = re.compile(rb"<!--include ([\w.-]+)-->")


@cache
def render(name: str) -> bytes:
    """The page `static/<name>` with the labels filled in (cached: the files do not change)."""
    html = INCLUDE.sub(
        lambda m: (STATIC / m[1].decode()).read_bytes(), (STATIC / name).read_bytes()
    )
    labels = orjson.dumps(LABELS).replace(b"</", b"<\\/")
    return html.replace(b"__LABELS__", labels)


def page(name: str) -> web.Response:
    return web.Response(
        body=render(name),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@routes.get("/")
async def sessions_page(request: web.Request) -> web.Response:
    """Sign-in and the sessions list (organizers)."""
    return page("index.html")


@routes.get("/sessions/{sid:\\d+}")
async def session_page(request: web.Request) -> web.Response:
    """One session: live dashboard, sites, excuses, closing and attendance (organizers)."""
    return page("session.html")


@routes.get("/sessions/{sid:\\d+}/evidence")
async def evidence_page(request: web.Request) -> web.Response:
    """Study evidence of a session: reflections ticked, self-study confirmed, a quiz file."""
    return page("evidence.html")


@routes.get("/sessions/{sid:\\d+}/qr-sheet")
async def qr_sheet_page(request: web.Request) -> web.Response:
    """The printable QR cards of the sites just uploaded; their tokens stay in the browser."""
    return page("qr-sheet.html")


@routes.get("/users")
async def users_page(request: web.Request) -> web.Response:
    """The users in the admin's scope: create one, change a role, unit, state or password."""
    return page("users.html")


@routes.get("/audit")
async def audit_page(request: web.Request) -> web.Response:
    """The audit log of the admin's scope, filtered, with its CSV download."""
    return page("audit.html")


@routes.get("/checkin")
async def checkin_page(request: web.Request) -> web.Response:
    """The coordinator's check-in page; the site token travels in the URL fragment."""
    return page("checkin.html")
