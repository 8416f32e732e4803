"""Security headers on every answer: the pages may run only the service's own scripts.

Set on `on_response_prepare` rather than in a middleware so that they also reach what no
handler returns: static files, the router's 404s and 405s, and streamed exports. The same
headers are harmless on JSON answers and on a websocket's handshake.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "add_security_headers", "setup"]

# `'self'` also allows the page's own websockets (CSP Level 3). `data:` images: the pages'
# empty favicon (`<link rel="icon" href="data:,">`). The QR code is inline SVG built by a
# vendored module and the pages set styles only through the CSSOM, so neither needs more.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
