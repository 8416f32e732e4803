"""The web pages: plain HTML files under `static/`, with the labels embedded at serve time.

An HTML file holds the placeholder `__LABELS__` (inside a `<script type="application/json"
id="labels">` element); it is replaced with the JSON of `labels.LABELS`, so every label lives
in one Python module and a page needs no extra request to get them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import orjson
from aiohttp import web

from streamsvc.web.labels import LABELS

__all__ = ["STATIC", "render", "routes"]

STATIC = Path(__file__).parent / "static"
routes = web.RouteTableDef()


@cache
def render(name: str) -> bytes:
    """The page `static/<name>` with the labels filled in (cached: the files do not change)."""
    html = (STATIC / name).read_bytes()
    labels = orjson.dumps(LABELS).replace(b"</", b"<\\/")
    return html.replace(b"__LABELS__", labels)


def page(name: str) -> web.Response:
    return web.Response(
        body=render(name),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
