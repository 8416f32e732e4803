"""Every answer, pages and API alike, carries the security headers the contract names."""

from __future__ import annotations

import pytest

from streamsvc.web.security import SECURITY_HEADERS


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/checkin", 200),
        ("/sessions/1", 200),
        ("/sessions/1/evidence", 200),
        ("/static/org-evidence.js", 200),
        ("/sessions/1/qr-sheet", 200),
        ("/static/org-qr-sheet.js", 200),
        ("/static/org-sites-upload.js", 200),
        ("/users", 200),
        ("/audit", 200),
        ("/static/org-users.js", 200),
        ("/static/org-audit.js", 200),
        ("/api", 200),
        ("/static/organizer.js", 200),
        ("/checkin-sw.js", 200),
        ("/healthz", 200),
        ("/api/v1/units", 401),
        ("/no/such/page", 404),
    ],
)
async def test_every_answer_carries_the_security_headers(client, path, status):
    r = await client.get(path)
    assert r.status == status
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, name


def test_the_policy_allows_only_the_service_s_own_scripts_and_no_framing():
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in SECURITY_HEADERS["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert "script-src" not in policy  # scripts fall back to default-src: 'self' only
    assert policy["frame-ancestors"] == "'none'"
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert SECURITY_HEADERS["Referrer-Policy"] == "no-referrer"
