"""The API page in Debian's chromium, under the service's Content-Security-Policy: it draws
every operation of /api/v1/openapi.json, and nothing on it is refused by the policy (a
refusal is a console error, which fails the test)."""

from __future__ import annotations

import pytest
from serverproc import ServerProcess

from streamsvc.web.openapi import openapi_document
from streamsvc.web.security import CONTENT_SECURITY_POLICY

from .conftest import BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(sqlite_server: ServerProcess) -> ServerProcess:
    """The store makes no difference here: SQLite only."""
    return sqlite_server


async def test_the_api_page_draws_every_operation(
    server: ServerProcess, new_page, browser_errors: BrowserErrors
) -> None:
    operations = sum(len(item) for item in openapi_document()["paths"].values())
    page = await new_page()
    response = await page.goto(f"{server.url}/api")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    await page.locator("#toc li").nth(operations - 1).wait_for(timeout=15_000)
    assert await page.locator("#toc li").count() == operations
    assert await page.locator(".api-op").count() == operations
    assert await page.locator("#schema-Error").count() == 1
    assert "POST /api/v1/sessions/{sid}/checkins" in await page.locator("#toc").inner_text()
    browser_errors.check()
