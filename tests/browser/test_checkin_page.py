"""The coordinator's check-in page in Debian's chromium, at phone size, against a real server.

One walk, as a coordinator does it: a refused link first; then members checked in by search and
tap (accent-insensitive), by a typed code and Enter, by a barcode scanner's fast keystrokes;
an unknown code, a member already present here and one already present at another site; a
scan taken back; the guest headcount. Then the server is killed: scans queue on the phone, the
page is reloaded without a network (the service worker serves it, IndexedDB keeps the queue),
the server comes back on the same port, and the admin API shows that every scan reached it
exactly once.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from builders import MEMBERS, UNITS, checkin, iso, now
from serverproc import ServerProcess, eventually

from .conftest import PHONE, BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
RECONNECT_MS = 30_000
# Chromium's own line for a websocket that cannot connect; expected only while the server is
# deliberately down.
WS_DOWN = r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws/checkin' failed"
# ... and for a roster request the kill cut off (the page reloads the roster after a void, and
# that request may still be on its way when the server dies; the page keeps its cached copy).
FETCH_CUT = (
    r"^Failed to load resource: net::ERR_(CONNECTION_RESET|CONNECTION_REFUSED|EMPTY_RESPONSE)$"
)
PHONE_CONTEXT = {
    "viewport": PHONE,
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "vi-VN",
    "timezone_id": "Asia/Ho_Chi_Minh",
}

READ_RECENT = """async () => {
  const db = await new Promise((ok, ko) => {
    const r = indexedDB.open("streamsvc-checkin");
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
  return await new Promise((ok, ko) => {
    const r = db.transaction("recent").objectStore("recent").getAll();
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
}"""


async def seed(proc: ServerProcess) -> dict[str, Any]:
    """The roster, a session for the whole province, a bridge site for Ba Bể and a hall."""
    async with aiohttp.ClientSession(
        base_url=proc.url, headers={"Authorization": f"Bearer {proc.admin_token}"}
    ) as http:

        async def post(path: str, body: dict[str, Any], status: int = 200) -> Any:
            async with http.post(path, json=body) as resp:
                assert resp.status == status, await resp.text()
                return await resp.json()

        await post("/api/v1/units", {"units": UNITS})
        await post("/api/v1/members", {"members": MEMBERS})
        session = await post(
            "/api/v1/sessions",
            {
                "title": "Học tập Nghị quyết Trung ương 6 khóa XII",
                "starts_at": iso(now()),
                "ends_at": iso(now() + timedelta(hours=2)),
                "audience": ["TU"],
            },
            201,
        )
        sid = session["id"]
        site = await post(
            f"/api/v1/sessions/{sid}/sites",
            {"name": "Điểm cầu huyện Ba Bể", "kind": "bridge", "unit": "DB1", "capacity": 80},
            201,
        )
        hall = await post(
            f"/api/v1/sessions/{sid}/sites",
            {"name": "Hội trường Tỉnh ủy", "kind": "hall", "unit": None, "capacity": 300},
            201,
        )
        return {"sid": sid, "site": site, "hall": hall}


async def result_is(page: Any, kind: str, name: str, head: str | None = None) -> None:
    await page.wait_for_selector(f'#result[data-kind="{kind}"]')
    assert await page.text_content("#result-name") == name
    if head is not None:
        assert head in await page.text_content("#result-head")


async def here_is(page: Any, n: int) -> None:
    await page.wait_for_selector(f'#here-count[data-value="{n}"]')


async def test_coordinator_checks_in_online_and_offline(
    server: ServerProcess, new_page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    seeded = await seed(server)
    sid, site, hall = seeded["sid"], seeded["site"], seeded["hall"]
    store = server.database.split(":", 1)[0]
    shots = artifacts_dir / f"checkin-{store}"
    shots.mkdir(exist_ok=True)

    # A link with a token the service does not know: a clear message, no reconnect loop.
    refused = await new_page(**PHONE_CONTEXT)
    refused.set_default_timeout(TIMEOUT_MS)
    await refused.goto(f"{server.url}/checkin#token=not-a-real-token")
    await refused.wait_for_selector("#token-panel:not([hidden])")
    assert "không hợp lệ" in await refused.text_content("#token-message")
    assert await refused.get_attribute("#conn", "data-state") == "offline"
    await refused.screenshot(path=str(shots / "refused-token.png"))

    page = await new_page(**PHONE_CONTEXT)
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{server.url}/checkin#token={site['token']}")
    await page.wait_for_selector('#conn[data-state="connected"]')
    # the token left the address bar, and stays on the device
    assert page.url == f"{server.url}/checkin"
    assert await page.evaluate("localStorage.getItem('streamsvc.checkin.token')") == site["token"]
    assert await page.text_content("#site-name") == "Điểm cầu huyện Ba Bể"
    assert "Nghị quyết Trung ương 6" in await page.text_content("#session-title")
    await page.wait_for_selector("#expected:text('Trong danh sách: 0/4')")  # DB1's subtree
    # no BarcodeDetector in desktop Linux chromium: the camera button stays hidden
    has_detector = await page.evaluate("'BarcodeDetector' in window")
    assert await page.is_hidden("#camera") != has_detector

    # Search without accents, tap the member.
    await page.fill("#scan", "dao")
    await page.click('#matches button[data-code="10000002"]')
    await result_is(page, "ok", "Hoàng Thị Đào", "Đã điểm danh")
    await here_is(page, 1)
    await page.fill("#scan", "nong dong")
    await page.click('#matches button[data-code="10000003"]')
    await result_is(page, "ok", "Nông Văn Đồng")
    await page.fill("#scan", "dao")
    await page.wait_for_selector('#matches button.is-present[data-code="10000002"]')
    await page.fill("#scan", "")

    # A typed code and Enter.
    await page.fill("#scan", "10000001")
    await page.press("#scan", "Enter")
    await result_is(page, "ok", "Nguyễn Văn An")
    await here_is(page, 3)

    # A barcode scanner: fast keystrokes ending in Enter, with the focus anywhere on the page.
    await page.click("h2")
    await page.keyboard.type("10000004\n", delay=4)
    await result_is(page, "ok", "Triệu Thị Mai")
    await here_is(page, 4)

    # The same card again, an unknown card, and a member already in at another site.
    await page.keyboard.type("10000001\n", delay=4)
    await result_is(page, "warn", "Nguyễn Văn An", "Đã điểm danh tại điểm này")
    await page.keyboard.type("99999999\n", delay=4)
    await result_is(page, "bad", "99999999", "Không có mã này")
    async with (
        aiohttp.ClientSession(base_url=server.url) as http,
        http.post(
            f"/api/v1/sessions/{sid}/checkins",
            json={"items": [checkin("10000005")]},
            headers={"Authorization": f"Bearer {hall['token']}"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
    await page.keyboard.type("10000005\n", delay=4)
    await result_is(page, "warn", "Lý Văn Bình", "Đã có mặt tại Hội trường Tỉnh ủy")
    await here_is(page, 5)

    # Take back the scanner's check-in of 10000004 (two taps: a tap alone is not enough).
    mai = page.locator("#recent li", has_text="Triệu Thị Mai")
    await mai.locator("button.void").click()
    await mai.locator("button.void[data-armed]").click()
    await page.wait_for_selector('#recent li[data-status="voided"]:has-text("Triệu Thị Mai")')
    await here_is(page, 4)

    # Guests: +, +, −, then a typed number.
    for button in ("#guests-plus", "#guests-plus", "#guests-minus"):
        await page.click(button)
    assert await page.input_value("#guests") == "1"
    await page.fill("#guests", "25")
    await page.press("#guests", "Enter")

    async def stored_guests() -> bool:
        """The service has the 25: the pending count alone can read 0 before the typed
        number is queued, and the server is killed next."""
        async with (
            aiohttp.ClientSession(base_url=server.url) as http,
            http.get(
                f"/api/v1/sessions/{sid}/roster",
                headers={"Authorization": f"Bearer {site['token']}"},
            ) as resp,
        ):
            return resp.status == 200 and (await resp.json())["guests"] == 25

    await eventually(stored_guests, 10, "the 25 guests stored")
    await page.wait_for_selector('#pending-box[data-value="0"]')
    await page.screenshot(path=str(shots / "online.png"))

    # The page must be able to come back without the network: wait for its service worker.
    await eventually(
        lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15, "its worker"
    )

    with browser_errors.tolerate(f"{WS_DOWN}|{FETCH_CUT}"):
        server.kill()
        await page.wait_for_selector('#conn:not([data-state="connected"])')
        await page.fill("#scan", "10000006")
        await page.press("#scan", "Enter")
        await result_is(page, "pending", "10000006", "sẽ gửi khi có mạng")
        await page.fill("#scan", "mai")
        await page.click('#matches button[data-code="10000004"]')
        await result_is(page, "pending", "Triệu Thị Mai")
        await page.click("#guests-plus")
        await page.wait_for_selector('#pending-box[data-value="3"]')
        assert "3 lượt chờ gửi" in await page.text_content("#pending")
        await page.screenshot(path=str(shots / "offline-queued.png"))

        # Reload with the server still down: the page, its queue and its roster survive.
        await page.reload()
        await page.wait_for_selector('#pending-box[data-value="3"]')
        assert await page.text_content("#site-name") == "Điểm cầu huyện Ba Bể"
        assert await page.input_value("#guests") == "26"
        await page.wait_for_selector('#recent li[data-status="pending"]:has-text("10000006")')
        await page.click("h2")
        await page.keyboard.type("10000002\n", delay=4)
        await result_is(page, "pending", "Hoàng Thị Đào")
        await page.wait_for_selector('#pending-box[data-value="4"]')
        await page.screenshot(path=str(shots / "offline-reloaded.png"))

        await server.start()  # same port, same database
        await page.wait_for_selector('#pending-box[data-value="0"]', timeout=RECONNECT_MS)
    await page.wait_for_selector('#conn[data-state="connected"]')
    await result_is(page, "warn", "Hoàng Thị Đào", "Đã điểm danh tại điểm này")
    await here_is(page, 6)
    assert await page.text_content("#expected") == "Trong danh sách: 4/4"
    await page.evaluate("window.scrollTo(0, 0)")
    await page.wait_for_selector('#recent li[data-status="ok"]:has-text("Ma Thị Hương")')
    await page.screenshot(path=str(shots / "back-online.png"))

    # Every scan reached the server, once.
    recent = await page.evaluate(READ_RECENT)
    stored = [r for r in recent if r["status"] != "rejected"]
    assert len(stored) == 9  # 6 online (one voided afterwards), 3 offline
    async with aiohttp.ClientSession(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as http:
        async with http.get(f"/api/v1/sessions/{sid}/live") as resp:
            live = await resp.json()
        ours = next(s for s in live["sites"] if s["id"] == site["id"])
        assert (ours["present"], ours["guests"]) == (6, 26)
        assert (live["present"], live["expected"]) == (6, 6)
        # the curve counts each stored, not voided check-in once: 8 from the page + 1 hall
        assert sum(m["checkins"] for m in live["curve"]) == 9 - 1 + 1
        async with http.get(f"/api/v1/sessions/{sid}/attendance") as resp:
            records = {r["member"]: r for r in (await resp.json())["records"]}
        assert {code for code, r in records.items() if r["status"] != "absent"} == {
            m["code"] for m in MEMBERS
        }
        assert records["10000005"]["site"] == hall["id"]
        assert all(records[c]["site"] == site["id"] for c in ("10000001", "10000004", "10000006"))
        # and the service already holds every event id the page made: a resend changes nothing
        async with http.post(
            f"/api/v1/sessions/{sid}/checkins",
            json={
                "items": [
                    {"type": "checkin", "id": r["id"], "member": r["code"], "ts": r["ts"]}
                    for r in stored
                ]
            },
            headers={"Authorization": f"Bearer {site['token']}"},
        ) as resp:
            results = (await resp.json())["results"]
        assert [r["result"] for r in results] == ["duplicate"] * len(stored)
    browser_errors.check()
    print(f"check-in page screenshots: {shots.resolve()}")
    print("tolerated while the server was down:", *browser_errors.tolerated, sep="\n  ")


# Linux Chromium has no BarcodeDetector: this stands in for the platform's, reading whatever
# card the test holds in front of the (fake) camera, and counting the frames that showed it.
CAMERA_STUB = """
window.__framesWithCard = 0;
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ["qr_code", "code_128"]; }
  constructor(options) { this.formats = options.formats; }
  async detect(source) {
    const card = window.__cardInFront;
    if (card) window.__framesWithCard += 1;
    return card ? [{ rawValue: card, format: "qr_code" }] : [];
  }
};
"""
# The page reads a frame every 200 ms and takes the same card as one scan for 3 s: six frames
# of the same card must still make one check-in.
FRAMES_WITH_CARD = 6


async def test_a_card_held_to_the_camera_is_checked_in_once(
    server: ServerProcess, new_page: Any, browser_errors: BrowserErrors
) -> None:
    seeded = await seed(server)
    page = await new_page(**PHONE_CONTEXT, permissions=["camera"])
    page.set_default_timeout(TIMEOUT_MS)
    await page.add_init_script(CAMERA_STUB)
    await page.goto(f"{server.url}/checkin#token={seeded['site']['token']}")
    await page.wait_for_selector('#conn[data-state="connected"]')
    await page.click("#camera")
    await page.wait_for_selector("#camera-dialog[open]")
    assert await page.evaluate("document.getElementById('camera-video').srcObject !== null")

    # The card stays in front of the camera for many frames: one check-in, not one per frame.
    await page.evaluate("window.__cardInFront = ' 10000003 '")
    await result_is(page, "ok", "Nông Văn Đồng")
    # polled through evaluate: wait_for_function's polling evals a string, which the page's
    # Content-Security-Policy (no 'unsafe-eval') refuses
    await eventually(
        lambda: page.evaluate(f"window.__framesWithCard >= {FRAMES_WITH_CARD}"), 15, "frames"
    )
    await page.evaluate("window.__cardInFront = null")
    await page.click("#camera-close")
    await page.wait_for_selector("#camera-dialog", state="hidden")
    await here_is(page, 1)

    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with aiohttp.ClientSession(base_url=server.url, headers=headers) as http:
        async with http.get(f"/api/v1/sessions/{seeded['sid']}/attendance") as resp:
            records = (await resp.json())["records"]
        async with http.get(f"/api/v1/sessions/{seeded['sid']}/live") as resp:
            curve = (await resp.json())["curve"]
    came = [r for r in records if r["status"] != "absent"]
    assert [(r["member"], r["site"]) for r in came] == [("10000003", seeded["site"]["id"])]
    assert sum(minute["checkins"] for minute in curve) == 1  # one event, not one per frame
