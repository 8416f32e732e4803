"""The live dashboard of a session with thousands of sites, in Debian's chromium.

2,000 sites over two provinces, registered with one bulk upload: the page must not take the
whole site list over its monitor. It opens it with `"sites": "none"` and a small `depth`, shows
the provinces as the way in, drills into one (the monitor re-opens on that unit: units and
sites narrow to it, the per-minute chart gives way to a note that it is the whole session's
only), and reads the per-site table a page of 100 at a time with its filters: silent only,
name search (without accents), paging.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from builders import checkin, iso, now
from serverproc import ServerProcess

from .conftest import LAPTOP, PHONE, BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 20_000
SITES_PER_COMMUNE = 250
PROVINCES = {
    "TN": ("Tỉnh ủy Thái Nguyên", ["Đồng Hỷ", "Phú Lương", "Võ Nhai", "Đại Từ"]),
    "CB": ("Tỉnh ủy Cao Bằng", ["Hà Quảng", "Trùng Khánh", "Bảo Lạc", "Nguyên Bình"]),
}
KINDS = ["bridge", "broadcast", "hall"]


def roster() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Two provinces of four communes, each commune with two cells of two members, and 250
    sites per commune (2,000 in all)."""
    units: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    sites: list[dict[str, Any]] = []
    for province, (name, communes) in PROVINCES.items():
        units.append({"code": province, "name": name, "parent": None})
        for c, commune in enumerate(communes, start=1):
            code = f"{province}-X{c}"
            units.append({"code": code, "name": f"Đảng ủy xã {commune}", "parent": province})
            for cell in (1, 2):
                cell_code = f"{code}-C{cell}"
                units.append(
                    {"code": cell_code, "name": f"Chi bộ {cell} {commune}", "parent": code}
                )
                for m in (1, 2):
                    members.append(
                        {
                            "code": f"{cell_code}-M{m}",
                            "full_name": f"Đảng viên {m} chi bộ {cell} {commune}",
                            "unit": cell_code,
                        }
                    )
            for i in range(1, SITES_PER_COMMUNE + 1):
                sites.append(
                    {
                        "name": f"Điểm cầu {commune} số {i:04d}",
                        "kind": KINDS[i % len(KINDS)],
                        "unit": code,
                        "capacity": None,
                    }
                )
    return units, members, sites


@pytest.fixture
async def big_session(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, int, list[Any]]]:
    """A server with the two provinces and a session of 2,000 sites: (server, session id,
    the created sites with their tokens)."""
    proc = ServerProcess(f"sqlite:///{tmp_path / 'streamsvc.db'}", tmp_path / "server.log")
    await proc.start()
    try:
        units, members, sites = roster()
        async with aiohttp.ClientSession(
            base_url=proc.url, headers={"Authorization": f"Bearer {proc.admin_token}"}
        ) as http:
            for path, body in (
                ("/api/v1/units", {"units": units}),
                ("/api/v1/members", {"members": members}),
            ):
                async with http.post(path, json=body) as resp:
                    assert resp.status == 200, await resp.text()
            session = {
                "title": "Hội nghị toàn quốc quán triệt Nghị quyết",
                "starts_at": iso(now() + timedelta(minutes=20)),
                "ends_at": iso(now() + timedelta(hours=3)),
                "audience": list(PROVINCES),
            }
            async with http.post("/api/v1/sessions", json=session) as resp:
                assert resp.status == 201, await resp.text()
                sid = (await resp.json())["id"]
            async with http.post(f"/api/v1/sessions/{sid}/sites", json={"sites": sites}) as resp:
                assert resp.status == 201, await resp.text()
                created = (await resp.json())["sites"]
        assert len(created) == 2_000
        yield proc, sid, created
    finally:
        proc.stop()


async def test_dashboard_of_two_thousand_sites(
    big_session: tuple[ServerProcess, int, list[Any]],
    new_page: Any,
    browser_errors: BrowserErrors,
    artifacts_dir: Path,
) -> None:
    server, sid, sites = big_session
    page = await new_page(viewport=LAPTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page.set_default_timeout(TIMEOUT_MS)
    hellos: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        if ws.url.endswith("/ws/monitor"):
            ws.on("framesent", lambda payload: _keep_hello(hellos, payload))

    page.on("websocket", on_socket)
    try:
        await _walk(page, server, sid, sites, hellos, artifacts_dir)
    except BaseException:
        await page.screenshot(path=artifacts_dir / "scale-failure.png", full_page=True)
        raise
    browser_errors.check()


def _keep_hello(hellos: list[dict[str, Any]], payload: Any) -> None:
    try:
        msg = json.loads(payload)
    except (TypeError, ValueError):
        return
    if isinstance(msg, dict) and msg.get("type") == "hello":
        hellos.append({k: v for k, v in msg.items() if k != "token"})


async def _wait_total(page: Any, total: int, offset: int = 0) -> None:
    await page.wait_for_selector(
        f'#sites-pager[data-total="{total}"][data-offset="{offset}"]:not([hidden])'
    )


async def _site_names(page: Any) -> list[str]:
    return await page.locator("#sites-body tr[data-site-id] td:first-child").all_text_contents()


async def _walk(
    page: Any,
    server: ServerProcess,
    sid: int,
    sites: list[Any],
    hellos: list[dict[str, Any]],
    artifacts: Path,
) -> None:
    # a coordinator at one site of Đồng Hỷ checks two members of Thái Nguyên in
    site = next(s for s in sites if s["name"] == "Điểm cầu Đồng Hỷ số 0007")
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(f"{server.url.replace('http', 'ws', 1)}/ws/checkin")
    try:
        await ws.send_json({"type": "hello", "token": site["token"], "client": "scale-test"})
        assert (await ws.receive_json(timeout=10))["type"] == "welcome"
        items = [checkin("TN-X1-C1-M1"), checkin("TN-X1-C2-M2")]
        await ws.send_json({"type": "batch", "items": items})
        ack = await ws.receive_json(timeout=10)
        assert [r["result"] for r in ack["results"]] == ["accepted"] * 2, ack

        await page.goto(f"{server.url}/sessions/{sid}#token={server.admin_token}")
        await page.wait_for_selector("#live-status[data-state=live]")
        await page.wait_for_selector('[data-live="present"][data-value="2"]')
        await page.wait_for_selector('[data-live="expected"][data-value="32"]')
        assert hellos and hellos[-1]["sites"] == "none" and hellos[-1]["depth"] in (1, 2), hellos
        assert "unit" not in hellos[-1]

        # -- the way in: both provinces; the whole session's chart
        await page.wait_for_selector('[data-unit="TN"][data-present="2"][data-expected="16"]')
        await page.wait_for_selector('[data-unit="CB"][data-present="0"][data-expected="16"]')
        await page.wait_for_selector("#curve svg .bars rect")

        # -- the site table: 2,000 sites, a page of 100 at a time
        await _wait_total(page, 2_000)
        assert await page.locator("#sites-body tr[data-site-id]").count() == 100
        first_page = await _site_names(page)
        assert "1–100" in await page.text_content("#sites-range")
        await page.click("#sites-next")
        await _wait_total(page, 2_000, 100)
        second_page = await _site_names(page)
        assert len(second_page) == 100 and not set(second_page) & set(first_page)
        top = await page.text_content("#sites-pager-top .pager-range")
        assert top == await page.text_content("#sites-range") and "101–200" in top, top
        await page.click('#sites-pager-top [data-page="-1"]')
        await _wait_total(page, 2_000, 0)

        # -- silent only: every site but the one whose coordinator is connected
        await page.check("#sites-silent")
        await _wait_total(page, 1_999)
        assert await page.locator('#sites-body tr[data-connected="true"]').count() == 0
        await page.uncheck("#sites-silent")
        await _wait_total(page, 2_000)

        # -- search without accents: "dong hy" finds Đồng Hỷ's 250 sites
        await page.fill("#sites-q", "dong hy")
        await _wait_total(page, SITES_PER_COMMUNE)
        names = await _site_names(page)
        assert len(names) == 100 and all("Đồng Hỷ" in n for n in names), names[:5]
        await page.fill("#sites-q", "dong hy so 0007")
        await _wait_total(page, 1)
        row = page.locator(f'#sites-body tr[data-site-id="{site["id"]}"]')
        assert await row.get_attribute("data-connected") == "true"
        assert await row.get_attribute("data-present") == "2"
        await page.fill("#sites-q", "")
        await _wait_total(page, 2_000)

        # -- by form, and the busiest site first
        halls = sum(1 for s in sites if s["kind"] == "hall")
        await page.select_option("#sites-kind", "hall")
        await _wait_total(page, halls)
        kinds = await page.locator(
            "#sites-body tr[data-site-id] td:nth-child(2)"
        ).all_text_contents()
        assert set(kinds) == {"Hội trường"}, set(kinds)
        await page.select_option("#sites-kind", "")
        await _wait_total(page, 2_000)
        await page.select_option("#sites-order", "present")
        await page.wait_for_selector(f'#sites-body tr[data-site-id="{site["id"]}"]:first-child')
        await page.select_option("#sites-order", "name")
        await page.screenshot(path=artifacts / "scale-dashboard-laptop.png", full_page=True)

        # -- drill into Thái Nguyên: the monitor watches that unit, units and sites narrow
        await page.click('[data-unit="TN"] button.drill')
        await page.wait_for_selector('[data-unit="TN-X1"][data-present="2"][data-expected="4"]')
        assert await page.locator('[data-unit="CB"]').count() == 0
        assert hellos[-1]["unit"] == "TN" and hellos[-1]["sites"] == "none", hellos
        await page.wait_for_selector('[data-live="expected"][data-value="16"]')
        await page.wait_for_selector('[data-live="present"][data-value="2"]')
        await _wait_total(page, 1_000)
        assert "Thái Nguyên" in await page.text_content("#sites-scope")
        # the per-minute chart is the whole session's only: a note, not "no check-ins yet"
        await page.wait_for_selector("#curve .curve-scoped")
        assert "toàn hội nghị" in await page.text_content("#curve")

        # one level further: a commune, its cells and its 250 sites; silent ones 249
        await page.click('[data-unit="TN-X1"] button.drill')
        await page.wait_for_selector('[data-unit="TN-X1-C1"][data-present="1"][data-expected="2"]')
        await _wait_total(page, SITES_PER_COMMUNE)
        assert await page.locator('[data-unit="TN-X1-C1"] button.drill').count() == 0  # a cell
        await page.check("#sites-silent")
        await _wait_total(page, SITES_PER_COMMUNE - 1)
        await page.uncheck("#sites-silent")
        crumbs = await page.locator("#unit-crumbs > *").all_text_contents()
        assert crumbs[0] == "Tất cả" and crumbs[-1] == "Đảng ủy xã Đồng Hỷ", crumbs

        # a third check-in moves the drilled view live
        await ws.send_json({"type": "batch", "items": [checkin("TN-X1-C1-M2")]})
        assert (await ws.receive_json(timeout=10))["results"][0]["result"] == "accepted"
        await page.wait_for_selector('[data-unit="TN-X1-C1"][data-present="2"]')
        await page.wait_for_selector('[data-live="present"][data-value="3"]')

        await page.set_viewport_size(PHONE)
        await page.screenshot(path=artifacts / "scale-dashboard-phone.png", full_page=True)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the dashboard scrolls sideways on a phone ({width}px)"
        await page.set_viewport_size(LAPTOP)

        # -- back up the crumbs to the whole view: both provinces, all the sites, the chart
        await page.click("#unit-crumbs button >> nth=0")
        await page.wait_for_selector('[data-unit="CB"]')
        await page.wait_for_selector('[data-unit="TN"][data-present="3"]')
        assert "unit" not in hellos[-1], hellos[-1]
        await _wait_total(page, 2_000)
        await page.wait_for_selector("#curve svg .bars rect")
    finally:
        await ws.close()
        await http.close()


async def test_scoped_viewer_of_two_thousand_sites(
    big_session: tuple[ServerProcess, int, list[Any]],
    new_page: Any,
    browser_errors: BrowserErrors,
    artifacts_dir: Path,
) -> None:
    """A viewer of one province signs in: the province is the view's top (its communes under
    it), its 1,000 sites are paged, and the chart says it is the whole session's only."""
    server, sid, _sites = big_session
    user = {
        "login": "tn.viewer",
        "full_name": "Nguyễn Văn Xem",
        "unit": "TN",
        "role": "viewer",
        "password": "mat-khau-du-dai-1",
    }
    async with (
        aiohttp.ClientSession(
            base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
        ) as http,
        http.post("/api/v1/users", json=user) as resp,
    ):
        assert resp.status == 201, await resp.text()
    page = await new_page(viewport=LAPTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page.set_default_timeout(TIMEOUT_MS)
    try:
        await page.goto(f"{server.url}/sessions/{sid}")
        await page.fill("#signin-login", user["login"])
        await page.fill("#signin-password", user["password"])
        await page.click("#signin-form button[type=submit]")
        await page.wait_for_selector("#live-status[data-state=live]")
        await page.wait_for_selector('[data-live="expected"][data-value="16"]')
        await page.wait_for_selector('[data-unit="TN-X4"][data-expected="4"] button.drill')
        assert await page.locator('[data-unit="CB"]').count() == 0
        await _wait_total(page, 1_000)
        await page.wait_for_selector("#curve .curve-scoped")
        await page.fill("#sites-q", "ha quang")  # Cao Bằng's: outside the scope
        await _wait_total(page, 0)
        assert await page.locator("#sites-body tr[data-site-id]").count() == 0
    except BaseException:
        await page.screenshot(path=artifacts_dir / "scale-viewer-failure.png", full_page=True)
        raise
    browser_errors.check()


async def test_dashboard_turns_to_pages_when_sites_are_added(
    tmp_path: Path, new_page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    """A session opened with a few sites keeps the whole list; once an upload takes it past
    300 sites the page re-opens its monitor without sites and reads the table in pages."""
    proc = ServerProcess(f"sqlite:///{tmp_path / 'streamsvc.db'}", tmp_path / "server.log")
    await proc.start()
    page = None
    try:
        units, members, sites = roster()
        async with aiohttp.ClientSession(
            base_url=proc.url, headers={"Authorization": f"Bearer {proc.admin_token}"}
        ) as http:
            for path, body in (
                ("/api/v1/units", {"units": units}),
                ("/api/v1/members", {"members": members}),
            ):
                async with http.post(path, json=body) as resp:
                    assert resp.status == 200, await resp.text()
            session = {
                "title": "Hội nghị quán triệt Nghị quyết",
                "starts_at": iso(now() + timedelta(minutes=20)),
                "ends_at": iso(now() + timedelta(hours=3)),
                "audience": list(PROVINCES),
            }
            async with http.post("/api/v1/sessions", json=session) as resp:
                assert resp.status == 201, await resp.text()
                sid = (await resp.json())["id"]
            async with http.post(
                f"/api/v1/sessions/{sid}/sites", json={"sites": sites[:10]}
            ) as resp:
                assert resp.status == 201, await resp.text()

            page = await new_page(viewport=LAPTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
            page.set_default_timeout(TIMEOUT_MS)
            hellos: list[dict[str, Any]] = []
            page.on(
                "websocket",
                lambda ws: ws.on("framesent", lambda payload: _keep_hello(hellos, payload)),
            )
            await page.goto(f"{proc.url}/sessions/{sid}#token={proc.admin_token}")
            await page.wait_for_selector("#live-status[data-state=live]")
            await page.wait_for_function(
                "document.querySelectorAll('#sites-body tr[data-site-id]').length === 10"
            )
            assert await page.is_hidden("#sites-pager")
            assert hellos and "sites" not in hellos[-1], hellos

            async with http.post(
                f"/api/v1/sessions/{sid}/sites", json={"sites": sites[10:410]}
            ) as resp:
                assert resp.status == 201, await resp.text()
            await _wait_total(page, 410)
            assert hellos[-1]["sites"] == "none", hellos
            assert await page.locator("#sites-body tr[data-site-id]").count() == 100
            await page.wait_for_selector("#live-status[data-state=live]")
    except BaseException:
        if page is not None:
            await page.screenshot(path=artifacts_dir / "scale-switch-failure.png", full_page=True)
        raise
    finally:
        if page is not None:
            await page.close()  # before the server stops: the table is read every few seconds
        proc.stop()
    browser_errors.check()
