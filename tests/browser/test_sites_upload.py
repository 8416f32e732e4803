"""Many sites at once from the session page, in Debian's chromium against `streamsvc serve`.

A district organizer uploads the district's list of sites (issue 13): a file with bad rows is
refused whole with every bad row shown, rows outside the district are refused with their rows,
and a good file of 200 sites gives the links as CSV (each link's token works at /ws/checkin)
and a printable sheet of 200 QR cards, twelve to an A4 page, none cut by a page break.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from builders import MEMBERS, UNITS, iso, now
from serverproc import ServerProcess

from .conftest import LAPTOP, BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 20_000
REFUSED = r"^Failed to load resource: the server responded with a status of 40[03]"
PASSWORD = "mat-khau-rat-dai-1"
ORGANIZER = {"login": "thu.nt", "full_name": "Nguyễn Thị Thu", "unit": "DB1", "role": "organizer"}
SITES = 200
PER_PAGE = 12
MM = 96 / 25.4  # CSS pixels in a millimetre
PRINTABLE_HEIGHT_MM = 277  # A4 (297 mm) inside the sheet's 10 mm margins

VILLAGES = ["Đồng Phúc", "Nam Mẫu", "Bành Trạch", "Hà Hiệu", "Phúc Lộc", "Thượng Giáo"]


def site_rows() -> list[dict[str, str]]:
    """200 sites of the district, Vietnamese names, one with a comma and quotes in it."""
    units = ["DB1", "CB1", "CB2", ""]
    kinds = ["hall", "bridge", "broadcast", "self_study"]
    rows = [
        {
            "name": f"Nhà văn hóa thôn {VILLAGES[i % len(VILLAGES)]} số {i + 1}",
            "kind": kinds[i % 4],
            "unit": units[i % 3],
            "capacity": str(20 + i) if i % 5 else "",
        }
        for i in range(SITES)
    ]
    rows[7]["name"] = 'Hội trường xã Đồng Phúc, thôn "Nà Ma"'
    return rows


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, ["name", "kind", "unit", "capacity"], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A server with the roster, a district organizer (DB1) and an open session."""
    proc = ServerProcess(f"sqlite:///{tmp_path / 'streamsvc.db'}", tmp_path / "server.log")
    await proc.start()
    try:
        async with aiohttp.ClientSession(
            base_url=proc.url, headers={"Authorization": f"Bearer {proc.admin_token}"}
        ) as http:

            async def post(path: str, body: dict[str, Any], status: int) -> Any:
                async with http.post(path, json=body) as resp:
                    assert resp.status == status, await resp.text()
                    return await resp.json()

            await post("/api/v1/units", {"units": UNITS}, 200)
            await post("/api/v1/members", {"members": MEMBERS}, 200)
            await post("/api/v1/users", {**ORGANIZER, "password": PASSWORD}, 201)
            session = await post(
                "/api/v1/sessions",
                {
                    "title": "Học tập Nghị quyết Đại hội XIV",
                    "starts_at": iso(now() - timedelta(minutes=10)),
                    "ends_at": iso(now() + timedelta(hours=2)),
                    "audience": ["TU"],
                    "late_after_minutes": 15,
                },
                201,
            )
        yield {"proc": proc, "url": proc.url, "sid": session["id"]}
    finally:
        proc.stop()


async def site_count(server: dict[str, Any]) -> int:
    proc = server["proc"]
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {proc.admin_token}"}) as http,
        http.get(f"{proc.url}/api/v1/sessions/{server['sid']}/sites") as resp,
    ):
        assert resp.status == 200
        return len((await resp.json())["sites"])


async def checkin_hello(url: str, token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url.replace('http', 'ws', 1)}/ws/checkin")
        await ws.send_json({"type": "hello", "token": token, "client": "browser-test"})
        answer: dict[str, Any] = await ws.receive_json(timeout=10)
        await ws.close()
        return answer


async def test_an_organizer_uploads_200_sites_and_prints_their_qr_cards(
    server: dict[str, Any], new_page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    page = await new_page(viewport=LAPTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page.set_default_timeout(TIMEOUT_MS)
    try:
        await _walk(page, server, browser_errors, artifacts_dir)
    except BaseException:
        await page.screenshot(path=artifacts_dir / "failure-sites-upload.png", full_page=True)
        raise
    browser_errors.check()


async def _walk(page: Any, server: dict[str, Any], errors: BrowserErrors, artifacts: Path) -> None:
    url, sid = server["url"], server["sid"]
    await page.goto(f"{url}/sessions/{sid}")
    await page.wait_for_selector("#signin:not([hidden])")
    await page.fill("#signin-login", ORGANIZER["login"])
    await page.fill("#signin-password", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#app:not([hidden])")
    await page.click("#upload-sites-toggle")
    await page.wait_for_selector("#sites-upload-form:not([hidden])")

    # -- a file with two bad rows: both shown, by row and name, and nothing registered
    rows = site_rows()
    bad = [dict(r) for r in rows[:10]]
    bad[2]["kind"] = "hội trường lớn"
    bad[6]["name"] = bad[1]["name"]
    with errors.tolerate(REFUSED):
        await page.set_input_files(
            "#sites-file",
            {"name": "diem-loi.csv", "mimeType": "text/csv", "buffer": csv_bytes(bad)},
        )
        await page.click("#sites-upload-button")
        await page.wait_for_selector("#sites-upload-errors:not([hidden])")
    assert "2 dòng sai" in await page.text_content("#sites-upload-message")
    items = await page.eval_on_selector_all(
        "#sites-upload-errors li", "lis => lis.map(li => [li.dataset.row, li.textContent])"
    )
    assert [row for row, _ in items] == ["3", "7"], items
    assert bad[2]["name"] in items[0][1] and "kind" in items[0][1]
    assert bad[6]["name"] in items[1][1] and "duplicate" in items[1][1]
    assert await site_count(server) == 0
    assert await page.is_hidden("#sites-uploaded")

    # -- pasted rows (tab-separated, as copied from a spreadsheet) reaching outside DB1: 403
    await page.set_input_files("#sites-file", [])
    pasted = "Hội trường xã Côn Minh\tHội trường\tCB3\t80\nĐiểm xem thôn Nà Hai\tbroadcast\tCB1\t"
    await page.fill("#sites-paste", pasted)
    with errors.tolerate(REFUSED):
        await page.click("#sites-upload-button")
        await page.wait_for_selector("#sites-upload-errors:not([hidden])")
    assert "ngoài phạm vi" in await page.text_content("#sites-upload-message")
    items = await page.eval_on_selector_all(
        "#sites-upload-errors li", "lis => lis.map(li => [li.dataset.row, li.textContent])"
    )
    assert [row for row, _ in items] == ["1"] and "Côn Minh" in items[0][1], items
    assert await site_count(server) == 0
    await page.fill("#sites-paste", "")

    # -- the good file of 200: registered at once, the tokens offered as CSV and as a sheet
    await page.set_input_files(
        "#sites-file",
        {"name": "diem-cau.csv", "mimeType": "text/csv", "buffer": csv_bytes(rows)},
    )
    await page.click("#sites-upload-button")
    await page.wait_for_selector(f'#sites-uploaded[data-count="{SITES}"]:not([hidden])')
    assert "200" in await page.text_content("#sites-uploaded-title")
    assert "MỘT LẦN" in await page.text_content("#sites-uploaded")
    assert await page.is_hidden("#sites-upload-form")
    assert await site_count(server) == SITES
    await page.locator("#sites-uploaded").screenshot(path=artifacts / "sites-uploaded.png")

    async with page.expect_download() as info:
        await page.click("#sites-download-csv")
    download = await info.value
    raw = Path(await download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "a BOM, for Excel to read the accents"
    got = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(got) == SITES
    assert list(got[0]) == ["name", "kind", "unit", "link", "token"]
    assert [g["name"] for g in got] == [r["name"] for r in rows]
    assert [g["unit"] for g in got] == [r["unit"] for r in rows]
    for g in got:
        assert g["link"] == f"{url}/checkin#token={g['token']}"
    welcome = await checkin_hello(url, got[7]["token"])
    assert welcome["type"] == "welcome", welcome

    # -- the printable sheet: 200 cards, 12 to an A4 page, none cut by a page break
    await page.click("#sites-print-sheet")
    await page.wait_for_url(re.compile(rf"/sessions/{sid}/qr-sheet$"))
    await page.wait_for_selector(".qr-card")
    assert await page.locator(".qr-card").count() == SITES
    assert await page.locator(".qr-card svg").count() == SITES
    pages = -(-SITES // PER_PAGE)
    assert await page.locator(".sheet-page").count() == pages
    first = page.locator(".qr-card").nth(7)
    assert await first.locator(".qr-name").text_content() == rows[7]["name"]
    assert await first.locator(".qr-unit").text_content() == "Chi bộ Đồng Phúc"  # CB1
    assert await first.locator(".qr-link").text_content() == got[7]["link"]
    assert "MỘT LẦN" in await page.text_content("#sheet-warning")

    await page.screenshot(path=artifacts / "qr-sheet.png")
    await page.emulate_media(media="print")
    layout = await page.evaluate(
        """() => [...document.querySelectorAll('.sheet-page')].map(p => {
            const box = p.getBoundingClientRect();
            return {
                top: box.top, bottom: box.bottom, left: box.left, right: box.right,
                after: getComputedStyle(p).breakAfter,
                cards: [...p.querySelectorAll('.qr-card')].map(c => {
                    const b = c.getBoundingClientRect();
                    return {top: b.top, bottom: b.bottom, left: b.left, right: b.right,
                            inside: getComputedStyle(c).breakInside};
                }),
            };
        })"""
    )
    assert await page.is_hidden(".sheet-toolbar"), "the buttons are not printed"
    assert sum(len(p["cards"]) for p in layout) == SITES
    for n, sheet in enumerate(layout):
        assert sheet["after"] == ("page" if n < pages - 1 else "auto")
        assert sheet["bottom"] - sheet["top"] <= PRINTABLE_HEIGHT_MM * MM
        for card in sheet["cards"]:
            assert card["inside"] == "avoid"
            assert sheet["top"] <= card["top"] and card["bottom"] <= sheet["bottom"] + 0.5
            assert sheet["left"] <= card["left"] and card["right"] <= sheet["right"] + 0.5
    # printed for real: exactly one PDF page per sheet page, so no card spilled over a break
    pdf = await page.pdf(prefer_css_page_size=True, print_background=True)
    (artifacts / "qr-sheet.pdf").write_bytes(pdf)
    await page.screenshot(path=artifacts / "qr-sheet-print.png")
    assert len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf)) == pages
    await page.emulate_media(media="screen")

    # -- done: the tokens leave the browser
    await page.click("#sheet-forget")
    assert await page.locator(".qr-card").count() == 0
    stored = await page.evaluate("() => Object.keys(sessionStorage)")
    assert not [k for k in stored if k.startswith("streamsvc.sites_upload.")], stored
    await page.goto(f"{url}/sessions/{sid}/qr-sheet")
    await page.wait_for_selector("#sheet-empty:not([hidden])")
    assert await page.locator(".qr-card").count() == 0

    # -- kept tokens come back on the session page (back from the sheet), and signing out
    # takes them out of the tab, whoever uses it next
    kept = {"title": "x", "sites": [{**rows[0], "id": 1, "token": got[0]["token"]}]}
    await page.evaluate(
        "([key, value]) => sessionStorage.setItem(key, value)",
        [f"streamsvc.sites_upload.{sid}", json.dumps(kept)],
    )
    await page.goto(f"{url}/sessions/{sid}")
    await page.wait_for_selector('#sites-uploaded[data-count="1"]:not([hidden])')
    await page.click("#sign-out")
    await page.wait_for_selector("#signin:not([hidden])")
    stored = await page.evaluate("() => Object.keys(sessionStorage)")
    assert not [k for k in stored if k.startswith("streamsvc.sites_upload.")], stored
