"""Issue 12's "done when", in Debian's chromium: signed in as the demo's district organizer,
the dashboard shows that district only.

`streamsvc serve --demo` runs as a real process; the test signs in through the form as the
user the banner names, opens the demo session from the list and checks the page against what
the admin token reads for the district: the header, the units (Bạch Thông and below), the
expected count, the sites, and a present count that moves as the simulated sites check in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from serverproc import ServerProcess

from .conftest import LAPTOP, BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
DISTRICT = "BK.BT"
LOGIN, PASSWORD = "district-organizer", "demo-district-organizer"
PROVINCE_MEMBERS = 37_000


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    proc = ServerProcess(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path / "server.log",
                         extra_args=("--demo",))  # fmt: skip
    await proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def admin_reads(server: ServerProcess) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """The demo session's id, its whole LIVE and the district's, as the admin token reads them."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with aiohttp.ClientSession(base_url=server.url, headers=headers) as http:
        async with http.get("/api/v1/sessions") as resp:
            (session,) = (await resp.json())["sessions"]
        sid = session["id"]
        async with http.get(f"/api/v1/sessions/{sid}/live") as resp:
            assert resp.status == 200, await resp.text()
            whole = await resp.json()
        async with http.get(f"/api/v1/sessions/{sid}/live", params={"unit": DISTRICT}) as resp:
            assert resp.status == 200, await resp.text()
            district = await resp.json()
    return sid, whole, district


def subtree(units: list[dict[str, Any]], root: str) -> set[str]:
    """The codes of `root` and every unit below it, from LIVE's units (code, parent)."""
    parent = {u["code"]: u["parent"] for u in units}
    inside = set()
    for code in parent:
        seen: set[str] = set()
        at: str | None = code
        while at is not None and at not in seen:
            if at == root:
                inside.add(code)
                break
            seen.add(at)
            at = parent.get(at)
    return inside


async def test_the_district_organizer_sees_the_district_only(
    demo: ServerProcess, new_page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    assert f"{LOGIN} / {PASSWORD}" in demo.log_path.read_text()
    page = await new_page(viewport=LAPTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page.set_default_timeout(TIMEOUT_MS)
    try:
        await _walk(page, demo, artifacts_dir)
    except BaseException:
        await page.screenshot(path=artifacts_dir / "failure-demo-district.png", full_page=True)
        raise
    browser_errors.check()


async def _walk(page: Any, server: ServerProcess, artifacts: Path) -> None:
    sid, whole, district = await admin_reads(server)
    inside = subtree(whole["units"], DISTRICT)
    assert DISTRICT in inside and len(inside) > 1
    assert 0 < district["expected"] < PROVINCE_MEMBERS

    # -- sign in through the form, as the banner says
    await page.goto(f"{server.url}/")
    await page.wait_for_selector("#signin:not([hidden])")
    await page.fill("#signin-login", LOGIN)
    await page.fill("#signin-password", PASSWORD)
    async with page.expect_response("**/api/v1/auth/login") as info:
        await page.click("#signin-form button[type=submit]")
    assert (await info.value).status == 200
    await page.wait_for_selector("#app:not([hidden])")
    assert await page.text_content("#whoami-name") == "Nông Văn Hải"
    unit = await page.text_content("#whoami-unit")
    assert "Bạch Thông" in unit and f"({DISTRICT})" in unit, unit

    # -- open the demo session's dashboard from the list
    await page.click(f'tr[data-session-id="{sid}"] a.button')
    await page.wait_for_url(f"**/sessions/{sid}")
    await page.wait_for_selector("#live-status[data-state=live]")
    await page.wait_for_selector("#units-body tr[data-unit]")
    await page.wait_for_selector("#sites-body tr[data-site-id]")
    assert await page.text_content("#whoami-name") == "Nông Văn Hải"
    assert "Bạch Thông" in await page.text_content("#whoami-unit")

    # -- the expected count is the district's, not the province's
    expected = int(await page.get_attribute('[data-live="expected"]', "data-value"))
    assert expected == district["expected"] < whole["expected"] == PROVINCE_MEMBERS

    # -- the units: Bạch Thông on top, its cells under it, nothing else
    shown = await page.locator("#units-body tr[data-unit]").evaluate_all(
        "rows => rows.map(r => r.dataset.unit)"
    )
    assert shown[0] == DISTRICT, shown
    assert len(shown) > 1 and set(shown) <= inside, set(shown) - inside
    top = page.locator(f'#units-body tr[data-unit="{DISTRICT}"]')
    assert int(await top.get_attribute("data-expected")) == district["expected"]

    # -- the sites: exactly the district's, every one's unit inside Bạch Thông
    unit_of = {s["id"]: s["unit"] for s in whole["sites"]}
    site_ids = await page.locator("#sites-body tr[data-site-id]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.siteId))"
    )
    assert sorted(site_ids) == sorted(s["id"] for s in district["sites"])
    assert all(unit_of[i] in inside for i in site_ids), {i: unit_of[i] for i in site_ids}
    assert len(site_ids) < len(whole["sites"])

    # -- the simulated sites check in: the present count moves without a reload
    await page.evaluate("window.__sameDocument = true")
    before = int(await page.get_attribute('[data-live="present"]', "data-value"))
    # (the page's CSP forbids eval, so a selector waits, not wait_for_function)
    await page.wait_for_selector(
        f'[data-live="present"]:not([data-value="{before}"])', timeout=45_000
    )
    assert await page.evaluate("window.__sameDocument === true")
    present = int(await page.get_attribute('[data-live="present"]', "data-value"))
    assert before < present <= expected
    await page.screenshot(path=artifacts / "dashboard-district.png", full_page=True)
    print(f"district dashboard screenshot: {(artifacts / 'dashboard-district.png').resolve()}")
