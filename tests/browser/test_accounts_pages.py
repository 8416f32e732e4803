"""The organizer pages with accounts, in Debian's chromium against a real `streamsvc serve`.

People sign in as themselves and see only what their role allows: a wrong password and too
many of them are told plainly, the bar names who is signed in and their unit, a viewer is
offered no button that changes anything, an organizer resets a site's token and gets the new
link and QR code, an admin manages users and reads the audit log, and signing out ends the
token and brings the form back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from builders import MEMBERS, UNITS, iso, now
from serverproc import ServerProcess

from .conftest import LAPTOP, PHONE, BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
REFUSED = r"^Failed to load resource: the server responded with a status of 4(01|03|29)"

PASSWORD = "mat-khau-rat-dai-1"
USERS = [
    {"login": "quan.tri", "full_name": "Hoàng Văn Quân", "unit": "TU", "role": "admin"},
    {"login": "thu.nt", "full_name": "Nguyễn Thị Thu", "unit": "DB1", "role": "organizer"},
    {"login": "lan.vt", "full_name": "Vi Thị Lan", "unit": "CB1", "role": "viewer"},
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A server with the roster, three users, one open session for the province and a site
    in each of CB1 (inside DB1) and DB2 (outside it), their tokens kept to check a reset."""
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
            for user in USERS:
                await post("/api/v1/users", {**user, "password": PASSWORD}, 201)
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
            sites = {}
            for name, unit in (("Nhà văn hóa Đồng Phúc", "CB1"), ("Hội trường huyện Na Rì", "DB2")):
                site = await post(
                    f"/api/v1/sessions/{session['id']}/sites",
                    {"name": name, "kind": "hall", "unit": unit, "capacity": None},
                    201,
                )
                sites[unit] = site
        yield {"proc": proc, "url": proc.url, "sid": session["id"], "sites": sites}
    finally:
        proc.stop()


@pytest.fixture
async def page(
    new_page: Any, artifacts_dir: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    """A laptop-sized page in Vietnamese; a failed test leaves its screenshot behind."""
    page = await new_page(viewport=LAPTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        await page.screenshot(
            path=artifacts_dir / f"failure-{request.node.name}.png", full_page=True
        )


async def sign_in(page: Any, url: str, login: str, password: str = PASSWORD) -> int:
    """Open `url`, sign in on its form; the status the login call answered."""
    await page.goto(url)
    await page.wait_for_selector("#signin:not([hidden])")
    await page.fill("#signin-login", login)
    return await submit_password(page, password)


async def submit_password(page: Any, password: str) -> int:
    await page.fill("#signin-password", password)
    async with page.expect_response("**/api/v1/auth/login") as info:
        await page.click("#signin-form button[type=submit]")
    return (await info.value).status


async def visible_buttons(page: Any) -> list[str]:
    """Every button a person can see now, by id (or its classes)."""
    return await page.eval_on_selector_all(
        "button", "bs => bs.filter(b => b.checkVisibility()).map(b => b.id || b.className)"
    )


async def me_status(url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        return resp.status


async def test_sign_in_with_a_password_shows_who_and_signs_out(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    url = server["url"]
    # a wrong password: one plain message, the same as for an unknown login
    with browser_errors.tolerate(REFUSED):
        assert await sign_in(page, url + "/", "thu.nt", "not-the-password") == 401
        await page.wait_for_selector("#signin-error:not([hidden])")
    assert "không đúng" in await page.text_content("#signin-error")
    assert await page.is_hidden("#app")

    assert await submit_password(page, PASSWORD) == 200
    await page.wait_for_selector("#app:not([hidden])")
    assert await page.text_content("#whoami-name") == "Nguyễn Thị Thu"
    assert await page.text_content("#whoami-unit") == "Đảng bộ huyện Ba Bể (DB1)"
    assert await page.text_content("#whoami-role") == "Ban tổ chức"
    # an organizer creates sessions, but manages neither users nor reads the audit log
    assert await page.is_visible("#new-session-toggle")
    assert await page.is_hidden("#nav-users") and await page.is_hidden("#nav-audit")
    await page.wait_for_selector(f'tr[data-session-id="{server["sid"]}"]')
    # a new session's audience is picked from the organizer's own subtree only
    await page.click("#new-session-toggle")
    await page.wait_for_selector('input[name=audience][value="DB1"]')
    offered = await page.locator("input[name=audience]").evaluate_all("ns => ns.map(n => n.value)")
    assert sorted(offered) == ["CB1", "CB2", "DB1"], offered
    await page.click("#new-session-toggle")
    await page.screenshot(path=artifacts_dir / "accounts-signed-in.png", full_page=True)
    await page.set_viewport_size(PHONE)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the signed-in bar scrolls sideways on a phone ({width}px)"
    await page.set_viewport_size(LAPTOP)

    # the users page is for admins: an organizer is told so and sees none of it
    await page.goto(url + "/users")
    await page.wait_for_selector("#page-error:not([hidden])")
    assert "quản trị viên" in await page.text_content("#page-error")
    assert await page.is_hidden("#users-table")

    # signing out ends the token at the server and brings the form back
    token = await page.evaluate("sessionStorage.getItem('streamsvc.token')")
    assert token and await me_status(url, token) == 200
    await page.goto(url + "/")
    await page.wait_for_selector("#app:not([hidden])")
    await page.click("#sign-out")
    await page.wait_for_selector("#signin:not([hidden])")
    assert await page.is_visible("#signin-login")
    assert await page.is_hidden("#app") and await page.is_hidden("#account")
    assert await page.evaluate("sessionStorage.getItem('streamsvc.token')") is None
    assert await me_status(url, token) == 401
    browser_errors.check()


async def test_too_many_wrong_passwords_say_how_long_to_wait(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors
) -> None:
    with browser_errors.tolerate(REFUSED):
        assert await sign_in(page, server["url"] + "/", "lan.vt", "wrong-password-0") == 401
        for attempt in range(1, 5):
            assert await submit_password(page, f"wrong-password-{attempt}") == 401
        # the sixth try is refused even with the right password, and says for how long
        assert await submit_password(page, PASSWORD) == 429
        await page.wait_for_selector("#signin-error:has-text('quá nhiều lần')")
    text = await page.text_content("#signin-error")
    assert "phút" in text, text
    assert await page.is_hidden("#app")
    browser_errors.check()


async def test_a_viewer_is_offered_nothing_that_changes(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    url, sid = server["url"], server["sid"]
    await sign_in(page, url + "/", "lan.vt")
    await page.wait_for_selector("#app:not([hidden])")
    assert await page.text_content("#whoami-unit") == "Chi bộ Đồng Phúc (CB1)"
    assert await page.text_content("#whoami-role") == "Chỉ xem"
    await page.wait_for_selector(f'tr[data-session-id="{sid}"]')
    assert await visible_buttons(page) == ["sign-out"]

    await page.click(f'tr[data-session-id="{sid}"] a.button')
    await page.wait_for_selector("#live-status[data-state=live]")
    cb1_site = server["sites"]["CB1"]["id"]
    await page.wait_for_selector(f'tr[data-site-id="{cb1_site}"]')
    # the viewer sees only the sites of its scope (not DB2's)
    assert await page.locator("tr[data-site-id]").count() == 1
    for hidden in ("#new-site-toggle", "#excuses", "#close-session", ".reset-token"):
        assert await page.locator(hidden).evaluate_all(
            "ns => ns.every(n => !n.checkVisibility())"
        ), hidden
    allowed = {"sign-out", "preview-summary", "crumb link-button", "link-button drill"}
    assert set(await visible_buttons(page)) <= allowed, await visible_buttons(page)
    assert await page.text_content("#close-heading") == "Kết quả điểm danh"
    await page.click("#preview-summary")  # reading the summary is a viewer's right
    await page.wait_for_selector("#summary:not([hidden])")
    await page.screenshot(path=artifacts_dir / "accounts-viewer-session.png", full_page=True)
    browser_errors.check()


async def test_an_organizer_resets_a_site_token_and_gets_the_new_link(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    url, sid = server["url"], server["sid"]
    site = server["sites"]["CB1"]
    await sign_in(page, f"{url}/sessions/{sid}", "thu.nt")
    await page.wait_for_selector("#live-status[data-state=live]")
    row = f'tr[data-site-id="{site["id"]}"]'
    await page.click(f"{row} button.reset-token")
    await page.wait_for_selector("#reset-dialog[open]")
    assert site["name"] in await page.text_content("#reset-question")
    await page.click("#reset-confirm")
    await page.wait_for_selector("#site-token-panel:not([hidden])")
    token = (await page.text_content("#site-token")).strip()
    assert token and token != site["token"]
    assert await page.get_attribute("#site-link", "href") == f"{url}/checkin#token={token}"
    assert await page.locator("#site-qr svg path").count() == 1
    assert site["name"] in await page.text_content("#site-token-title")
    await page.screenshot(path=artifacts_dir / "accounts-token-reset.png", full_page=True)

    # the old token is refused at once, the new one welcomed
    async with aiohttp.ClientSession() as http:
        for candidate, expected in ((site["token"], "error"), (token, "welcome")):
            async with http.ws_connect(f"{url.replace('http', 'ws', 1)}/ws/checkin") as ws:
                await ws.send_json({"type": "hello", "token": candidate, "client": "reset-test"})
                assert (await ws.receive_json(timeout=10))["type"] == expected

    await page.click("#site-token-done")
    assert await page.text_content("#site-token") == ""
    # the audience is the whole province, beyond DB1: this organizer may not close it
    assert await page.is_hidden("#close-session")

    # an excuse for a member of DB1, withdrawn at once
    await page.fill("#member-q", "dong")
    await page.click("#member-search button[type=submit]")
    await page.click('#member-results li[data-member="10000003"] button')
    await page.fill("#excuse-reason", "Đi công tác")
    await page.click("#excuse-form button[type=submit]")
    await page.wait_for_selector("#excuse-withdraw:not([hidden])")
    await page.click("#excuse-withdraw")
    await page.wait_for_selector("#excuse-message:has-text('Đã rút')")
    assert await page.is_hidden("#excuse-withdraw")
    # the site in DB2 lies outside this organizer's DB1: it is not listed at all
    assert await page.locator("tr[data-site-id]").count() == 1
    browser_errors.check()


async def test_an_admin_creates_a_user_and_reads_the_audit_log(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    url = server["url"]
    await sign_in(page, url + "/", "quan.tri")
    await page.wait_for_selector("#app:not([hidden])")
    assert await page.text_content("#whoami-role") == "Quản trị viên"
    await page.click("#nav-users")
    await page.wait_for_url(f"{url}/users")
    await page.wait_for_selector('tr[data-login="thu.nt"]')

    await page.click("#new-user-toggle")
    await page.fill("#u-login", "mai.tt")
    await page.fill("#u-name", "Triệu Thị Mai")
    await page.select_option("#u-unit", "CB2")
    await page.select_option("#u-role", "organizer")
    await page.fill("#u-password", "short")
    await page.click("#user-form button[type=submit]")
    await page.wait_for_selector("#user-error:not([hidden])")
    assert "10 ký tự" in await page.text_content("#user-error")
    await page.fill("#u-password", "mot-mat-khau-du-dai")
    await page.click("#user-form button[type=submit]")
    await page.wait_for_selector('tr[data-login="mai.tt"][data-role="organizer"]')
    assert "mai.tt" in await page.text_content("#users-message")

    # a login taken is refused plainly
    await page.click("#new-user-toggle")
    await page.fill("#u-login", "mai.tt")
    await page.fill("#u-name", "Người khác")
    await page.fill("#u-password", "mot-mat-khau-du-dai")
    with browser_errors.tolerate(r"status of 409"):
        await page.click("#user-form button[type=submit]")
        await page.wait_for_selector("#user-error:not([hidden])")
    assert "đã có người dùng" in await page.text_content("#user-error")
    await page.click("#new-user-toggle")

    # change the role and lock the account
    await page.click('tr[data-login="mai.tt"] button.edit-user')
    await page.select_option("#e-role", "viewer")
    await page.uncheck("#e-active")
    await page.click("#edit-form button[type=submit]")
    await page.wait_for_selector('tr[data-login="mai.tt"][data-role="viewer"][data-active="false"]')
    await page.screenshot(path=artifacts_dir / "accounts-users.png", full_page=True)

    # the audit log has both changes, newest first, and filters by action
    await page.click("#nav-audit")
    await page.wait_for_url(f"{url}/audit")
    await page.wait_for_selector("#audit-body tr[data-action=user_created]")
    actions = await page.locator("#audit-body tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions.index("user_changed") < actions.index("user_created"), actions
    row = page.locator("#audit-body tr[data-action=user_created]", has_text="mai.tt")
    assert await row.count() == 1
    assert "quan.tri" in await row.text_content()
    await page.select_option("#a-action", "user_changed")
    await page.click("#audit-filters button[type=submit]")
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#audit-body tr')]"
        ".every(r => r.dataset.action === 'user_changed')"
    )
    assert await page.locator("#audit-body tr").count() >= 1
    await page.screenshot(path=artifacts_dir / "accounts-audit.png", full_page=True)

    async with page.expect_download() as info:
        await page.click("#audit-csv")
    download = await info.value
    text = Path(await download.path()).read_text(encoding="utf-8-sig")
    assert "user_changed" in text and "user_created" not in text, text[:500]
    browser_errors.check()


async def test_the_admin_token_link_still_signs_in(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors
) -> None:
    url = server["url"]
    await page.goto(f"{url}/audit#token={server['proc'].admin_token}")
    await page.wait_for_selector("#audit-body tr")
    assert "#" not in page.url
    assert await page.text_content("#whoami-name") == "Mã quản trị"
    assert await page.text_content("#whoami-unit") == "Toàn bộ tổ chức đảng"
    assert await page.is_visible("#nav-users")
    await page.click("#sign-out")
    await page.wait_for_selector("#signin:not([hidden])")
    assert await page.is_hidden("#app")
    # the form offers the password first, and the token a click away
    assert await page.is_visible("#signin-login")
    await page.click("#signin-use-token")
    assert await page.is_visible("#signin-token") and await page.is_hidden("#signin-login")
    browser_errors.check()
