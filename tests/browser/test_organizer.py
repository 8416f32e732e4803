"""The organizer's pages in Debian's chromium, against a real `streamsvc serve` process.

One walk through a whole session, as an organizer does it: sign in (a wrong token first),
create a session and register a site through the pages, watch members checked in over the
coordinator websocket appear on the dashboard without a reload, restart the server and see the
dashboard go not-live and come back with the same numbers, record an excuse, close the session,
read the reconciled summary and open the downloaded workbook.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
import pytest
from builders import MEMBERS, UNITS, checkin, iso, now
from serverproc import ServerProcess

from .conftest import LAPTOP, PHONE, BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
# Chromium's own line for a websocket that cannot connect; expected only while the server is
# deliberately down.
WS_DOWN = r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws/monitor' failed"
BAD_TOKEN_401 = r"^Failed to load resource: the server responded with a status of 401"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    proc = ServerProcess(f"sqlite:///{tmp_path / 'streamsvc.db'}", tmp_path / "server.log")
    await proc.start()
    try:
        async with aiohttp.ClientSession(
            base_url=proc.url, headers={"Authorization": f"Bearer {proc.admin_token}"}
        ) as http:
            for path, body in (
                ("/api/v1/units", {"units": UNITS}),
                ("/api/v1/members", {"members": MEMBERS}),
            ):
                async with http.post(path, json=body) as resp:
                    assert resp.status == 200, await resp.text()
        yield proc
    finally:
        proc.stop()


async def live_value(page: Any, name: str) -> str:
    return await page.get_attribute(f'[data-live="{name}"]', "data-value")


async def wait_live(page: Any, **values: Any) -> None:
    """Wait until every `data-live` number shows the given value (as the page stores it)."""
    for name, value in values.items():
        await page.wait_for_selector(f'[data-live="{name}"][data-value="{value}"]')


async def coordinator(url: str, token: str) -> tuple[aiohttp.ClientSession, Any]:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(f"{url.replace('http', 'ws', 1)}/ws/checkin")
    await ws.send_json({"type": "hello", "token": token, "client": "browser-test"})
    welcome = await ws.receive_json(timeout=10)
    assert welcome["type"] == "welcome", welcome
    return http, ws


async def test_organizer_runs_a_session(
    server: ServerProcess, new_page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    page = await new_page(viewport=LAPTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page.set_default_timeout(TIMEOUT_MS)
    try:
        await _walk(page, server, browser_errors, artifacts_dir)
    except BaseException:
        await page.screenshot(path=artifacts_dir / "failure.png", full_page=True)
        raise
    browser_errors.check()


async def _walk(page: Any, server: ServerProcess, errors: BrowserErrors, artifacts: Path) -> None:
    # -- sign in: a wrong token in the fragment is refused clearly, then the right one typed
    with errors.tolerate(BAD_TOKEN_401):
        await page.goto(f"{server.url}/#token=not-the-admin-token")
        await page.wait_for_selector("#signin-error:not([hidden])")
    assert "#" not in page.url, "the token must leave the address bar"
    assert "không đúng" in (await page.text_content("#signin-error"))
    await page.fill("#signin-token", server.admin_token)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#app:not([hidden])")
    assert await page.is_visible("#sessions-empty")

    # -- create a session for the whole province
    await page.click("#new-session-toggle")
    await page.check('input[name=audience][value="TU"]')
    await page.fill("#f-title", "Học tập Nghị quyết Trung ương 6 khóa XII")
    await page.click("#session-form button[type=submit]")
    await page.wait_for_url(re.compile(r"/sessions/\d+$"))
    sid = int(page.url.rsplit("/", 1)[1])
    await page.wait_for_selector("#live-status[data-state=live]")
    await wait_live(page, present=0, expected=6, rate="0.0000", guests=0, unexpected=0)
    assert await page.get_attribute('[data-unit="TU"]', "data-expected") == "6"

    # -- register a hall; its coordinator token is shown once, with a QR code of the link
    await page.click("#new-site-toggle")
    await page.fill("#s-name", "Hội trường Tỉnh ủy")
    await page.select_option("#s-kind", "hall")
    await page.select_option("#s-unit", "TU")
    await page.fill("#s-capacity", "300")
    await page.click("#site-form button[type=submit]")
    await page.wait_for_selector("#site-token-panel:not([hidden])")
    token = (await page.text_content("#site-token")).strip()
    assert len(token) >= 16
    link = await page.get_attribute("#site-link", "href")
    assert link == f"{server.url}/checkin#token={token}"
    assert await page.locator("#site-qr svg path").count() == 1
    site_row = page.locator("tr[data-site-id]")
    await site_row.wait_for()
    site_id = await site_row.get_attribute("data-site-id")
    row = f'tr[data-site-id="{site_id}"]'
    assert await page.get_attribute(row, "data-connected") == "false"
    await page.click("#site-token-done")
    assert await page.text_content("#site-token") == ""

    # -- members check in over the coordinator websocket; the page must not reload
    await page.evaluate("window.__sameDocument = true")
    http, ws = await coordinator(server.url, token)
    try:
        await page.wait_for_selector(f'{row}[data-connected="true"]')
        events = [checkin("10000001"), checkin("10000002"), checkin("10000003")]
        events.append({"type": "guests", "id": "guests-1", "count": 12, "ts": iso(now())})
        await ws.send_json({"type": "batch", "items": events})
        ack = await ws.receive_json(timeout=10)
        assert [r["result"] for r in ack["results"]] == ["accepted"] * 4, ack
        await wait_live(page, present=3, expected=6, rate="0.5000", guests=12, unexpected=0)
        await page.wait_for_selector('[data-unit="TU"][data-present="3"]')
        await page.wait_for_selector(f'{row}[data-present="3"]')
        await page.wait_for_selector("#curve svg .bars rect")
        # drill down: province committee -> district committees -> cells
        await page.click('[data-unit="TU"] button.drill')
        await page.wait_for_selector('[data-unit="DB1"][data-present="3"][data-expected="4"]')
        assert await page.get_attribute('[data-unit="DB2"]', "data-present") == "0"
        await page.click('[data-unit="DB1"] button.drill')
        await page.wait_for_selector('[data-unit="CB1"][data-present="2"]')
        await page.wait_for_selector('[data-unit="CB2"][data-present="1"]')
        await page.click("#unit-crumbs button >> nth=0")
        await page.wait_for_selector('[data-unit="TU"]')
        assert await page.evaluate("window.__sameDocument === true")

        await page.screenshot(path=artifacts / "dashboard-laptop.png", full_page=True)
        await page.set_viewport_size(PHONE)
        await page.screenshot(path=artifacts / "dashboard-phone.png", full_page=True)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the dashboard scrolls sideways on a phone ({width}px)"
        await page.set_viewport_size(LAPTOP)
    finally:
        await ws.close()
        await http.close()

    # -- the server restarts: the dashboard says it is not live, then shows the same numbers
    with errors.tolerate(WS_DOWN):
        server.stop()
        await page.wait_for_selector("#live-status[data-state=offline]")
        await page.wait_for_selector("#live-banner:not([hidden])")
        await server.start()
        await page.wait_for_selector("#live-status[data-state=live]", timeout=30_000)
    assert await page.is_hidden("#live-banner")
    await wait_live(page, present=3, expected=6, rate="0.5000", guests=12, unexpected=0)
    await page.wait_for_selector(f'{row}[data-present="3"][data-connected="false"]')
    assert await page.evaluate("window.__sameDocument === true")

    # -- an excuse for a member who has not checked in
    await page.fill("#member-q", "trieu")
    await page.click("#member-search button[type=submit]")
    await page.click('#member-results li[data-member="10000004"] button')
    await page.fill("#excuse-reason", "Ốm, có giấy của trạm y tế")
    await page.click("#excuse-form button[type=submit]")
    await page.wait_for_selector("#excuse-message.ok:not([hidden])")
    assert "Triệu Thị Mai" in await page.text_content("#excuse-message")

    # -- close (confirmed), then the reconciled attendance per unit
    await page.click("#close-session")
    await page.click("#close-confirm")
    await page.wait_for_selector("#summary:not([hidden])")
    await page.wait_for_selector("#session-state.state-closed")
    total = await page.locator("#summary-total td").all_text_contents()
    # unit, expected, present, late, excused, made_up, absent, rate
    assert total[1:7] == ["6", "3", "0", "1", "0", "2"], total
    cells = await page.locator('[data-summary-unit="CB2"] td').all_text_contents()
    assert cells[1:7] == ["2", "1", "0", "1", "0", "0"], cells
    await page.screenshot(path=artifacts / "summary-laptop.png", full_page=True)

    # -- the Excel download (fetched with the admin token, handed over as a blob)
    async with page.expect_download() as info:
        await page.click("#download-xlsx")
    download = await info.value
    assert download.suggested_filename == f"session-{sid}-attendance.xlsx"
    data = Path(await download.path()).read_bytes()
    (artifacts / download.suggested_filename).write_bytes(data)
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    try:
        rows = list(workbook["attendance"].iter_rows(values_only=True))
        assert rows[0][:5] == ("member", "full_name", "unit", "unit_name", "status")
        status = {row[0]: row[4] for row in rows[1:]}
        assert status == {
            "10000001": "present",
            "10000002": "present",
            "10000003": "present",
            "10000004": "excused",
            "10000005": "absent",
            "10000006": "absent",
        }
        assert "summary" in workbook.sheetnames
    finally:
        workbook.close()
    print(f"screenshots and the workbook: {artifacts.resolve()}")
