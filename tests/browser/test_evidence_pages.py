"""Study evidence where it happens, in Debian's chromium against a real `streamsvc serve`.

A cell secretary (an organizer at a cell) opens the session's evidence page and sees only the
cell's members: ticks the reflections of two who attended and saves, uploads the quiz
platform's CSV as it is (extra columns, Vietnamese headers, "8,5"), sees every bad row of a
file with one bad score (and nothing applied), and confirms a member who studied on their own
together with the reflection. After the close the session page shows completion next to
attendance, per unit; the new-session form sets the requirements and the plan rule, and the
session page records an action plan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from builders import MEMBERS, UNITS, checkin, iso, now
from serverproc import ServerProcess

from streamsvc.storage import open_store

from .conftest import LAPTOP, PHONE, BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
REFUSED = r"^Failed to load resource: the server responded with a status of 4(00|03)"
PASSWORD = "mat-khau-rat-dai-1"
# two more members of the cell CB1, so that it has attended members and an absent one
CELL_MEMBERS = [
    {"code": "10000007", "full_name": "Đinh Văn Khánh", "unit": "CB1"},
    {"code": "10000008", "full_name": "Lục Thị Nga", "unit": "CB1"},
]
USERS = [
    {"login": "bi.thu", "full_name": "Hà Thị Hoa", "unit": "CB1", "role": "organizer"},
    {"login": "quan.tri", "full_name": "Hoàng Văn Quân", "unit": "TU", "role": "admin"},
    {"login": "lan.vt", "full_name": "Vi Thị Lan", "unit": "CB1", "role": "viewer"},
]
ATTENDED = ["10000001", "10000002", "10000007", "10000003"]  # the first three in CB1
REQUIRES = {"reflection": True, "quiz_pass": 5, "quiz_max": 10}


class Api:
    """The admin token's calls the tests set up and check with."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def call(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        async with self.http.request(method, path, **kwargs) as resp:
            assert resp.status == status, await resp.text()
            return await resp.json() if resp.content_type == "application/json" else None


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A province session requiring a reflection and a quiz (pass 5 of 10), a hall in CB1
    where three of the cell's four members and one of CB2 checked in, and the users."""
    database = f"sqlite:///{tmp_path / 'streamsvc.db'}"
    proc = ServerProcess(database, tmp_path / "server.log")
    await proc.start()
    try:
        async with aiohttp.ClientSession(
            base_url=proc.url, headers={"Authorization": f"Bearer {proc.admin_token}"}
        ) as http:
            api = Api(http)
            await api.call("POST", "/api/v1/units", 200, json={"units": UNITS})
            await api.call("POST", "/api/v1/members", 200, json={"members": MEMBERS + CELL_MEMBERS})
            for user in USERS:
                await api.call("POST", "/api/v1/users", 201, json={**user, "password": PASSWORD})
            session = await api.call(
                "POST",
                "/api/v1/sessions",
                201,
                json={
                    "title": "Học tập Nghị quyết Đại hội XIV",
                    "starts_at": iso(now() - timedelta(minutes=30)),
                    "ends_at": iso(now() + timedelta(hours=2)),
                    "audience": ["TU"],
                    "late_after_minutes": 15,
                    "requires": REQUIRES,
                },
            )
            sid = session["id"]
            site = await api.call(
                "POST",
                f"/api/v1/sessions/{sid}/sites",
                201,
                json={"name": "Nhà văn hóa Đồng Phúc", "kind": "hall", "unit": None},
            )
            at = now() - timedelta(minutes=25)
            results = await api.call(
                "POST",
                f"/api/v1/sessions/{sid}/checkins",
                200,
                json={"items": [checkin(code, at) for code in ATTENDED]},
                headers={"Authorization": f"Bearer {site['token']}"},
            )
            assert {r["result"] for r in results["results"]} == {"accepted"}
            yield {"proc": proc, "url": proc.url, "sid": sid, "database": database, "api": api}
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


async def sign_in(page: Any, url: str, login: str) -> None:
    await page.goto(url)
    await page.wait_for_selector("#signin:not([hidden])")
    await page.fill("#signin-login", login)
    await page.fill("#signin-password", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#app:not([hidden])")


async def stored_evidence(database: str, sid: int) -> dict[str, Any]:
    """What the store holds: member -> Evidence (read beside the running server)."""
    store = open_store(database)
    await store.open()
    try:
        return await store.list_evidence(sid)
    finally:
        await store.close()


async def shown_members(page: Any) -> list[str]:
    return await page.locator("#evidence-body tr").evaluate_all(
        "rows => rows.map(r => r.dataset.member)"
    )


def row(member: str) -> str:
    return f'#evidence-body tr[data-member="{member}"]'


async def test_a_cell_secretary_records_reflections_quiz_scores_and_self_study(
    server: dict[str, Any],
    page: Any,
    browser_errors: BrowserErrors,
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    url, sid, database = server["url"], server["sid"], server["database"]
    # the session page links to the evidence page
    await sign_in(page, f"{url}/sessions/{sid}", "bi.thu")
    await page.wait_for_selector("#evidence-link:visible")
    assert "nộp bài thu hoạch" in await page.text_content("#session-requires")
    await page.click("#evidence-link")
    await page.wait_for_url(f"{url}/sessions/{sid}/evidence")
    await page.wait_for_selector(row("10000001"))

    # only the cell's members, with the session's requirements at the top
    assert sorted(await shown_members(page)) == ["10000001", "10000002", "10000007", "10000008"]
    requires = await page.text_content("#session-requires")
    assert "nộp bài thu hoạch" in requires and "5/10" in requires, requires
    statuses = await page.locator("#evidence-body tr").evaluate_all(
        "rows => Object.fromEntries(rows.map(r => [r.dataset.member, r.dataset.status]))"
    )
    assert statuses == {
        "10000001": "present",
        "10000002": "present",
        "10000007": "present",
        "10000008": "absent",
    }
    await page.select_option("#filter-status", "absent")
    assert await shown_members(page) == ["10000008"]
    await page.select_option("#filter-status", "attended")
    assert sorted(await shown_members(page)) == ["10000001", "10000002", "10000007"]
    await page.select_option("#filter-status", "")
    # the absent member's reflection waits for a self-study confirmation
    assert await page.is_disabled(f"{row('10000008')} input.reflection")
    assert await page.is_disabled("#save-evidence")

    # two reflections ticked and saved: only the changed rows go
    await page.check(f"{row('10000001')} input.reflection")
    await page.check(f"{row('10000002')} input.reflection")
    assert "2 " in await page.text_content("#changes-count")
    async with page.expect_request(f"**/api/v1/sessions/{sid}/evidence") as sent:
        await page.click("#save-evidence")
    assert (await sent.value).post_data_json == {
        "evidence": [
            {"member": "10000001", "reflection": True},
            {"member": "10000002", "reflection": True},
        ]
    }
    await page.wait_for_selector("#save-message.ok")
    assert "2 mới" in await page.text_content("#save-message")
    assert await page.is_disabled("#save-evidence")
    evidence = await stored_evidence(database, sid)
    assert {m: e.reflection for m, e in evidence.items()} == {
        "10000001": True,
        "10000002": True,
    }

    # the quiz platform's export as it is: extra columns, Vietnamese headers, a decimal comma
    quiz = tmp_path / "ket-qua-trac-nghiem.csv"
    quiz.write_text(
        "STT,Họ và tên,Mã đảng viên,Điểm,Thời gian nộp\n"
        '1,Nguyễn Văn An,10000001,"8,5",2026-05-22 09:40\n'
        "2,Đinh Văn Khánh,10000007,4,2026-05-22 09:41\n",
        encoding="utf-8-sig",
    )
    await page.set_input_files("#quiz-file", str(quiz))
    async with page.expect_request(f"**/api/v1/sessions/{sid}/evidence") as sent:
        await page.click("#quiz-upload-button")
    assert (await sent.value).headers["content-type"] == "text/csv"
    await page.wait_for_selector("#quiz-message.ok")
    assert "1 mới, 1 cập nhật" in await page.text_content("#quiz-message")
    evidence = await stored_evidence(database, sid)
    assert evidence["10000001"].quiz_score == 8.5 and evidence["10000001"].reflection
    assert evidence["10000007"].quiz_score == 4 and not evidence["10000007"].reflection

    # one bad score: every bad row listed, nothing applied
    bad = tmp_path / "ket-qua-loi.csv"
    bad.write_text(
        "STT,Họ và tên,Mã đảng viên,Điểm\n"
        "1,Hoàng Thị Đào,10000002,7\n"
        "2,Đinh Văn Khánh,10000007,mười\n",
        encoding="utf-8",
    )
    await page.set_input_files("#quiz-file", str(bad))
    with browser_errors.tolerate(REFUSED):
        await page.click("#quiz-upload-button")
        await page.wait_for_selector("#quiz-errors:not([hidden]) li")
    assert await page.locator("#quiz-errors li").count() == 1
    assert (await page.text_content("#quiz-errors li")).startswith("Dòng 2")
    assert "Không ghi được gì" in await page.text_content("#quiz-message")
    after = await stored_evidence(database, sid)
    assert after["10000002"].quiz_score is None and after["10000007"].quiz_score == 4

    # a member who studied on their own: confirmed with the reflection, in one save
    await page.click(f"{row('10000008')} button.confirm-self-study")
    assert await page.is_checked(f"{row('10000008')} input.reflection")
    async with page.expect_request(f"**/api/v1/sessions/{sid}/evidence") as sent:
        await page.click("#save-evidence")
    assert (await sent.value).post_data_json == {
        "evidence": [{"member": "10000008", "self_study": True, "reflection": True}]
    }
    await page.wait_for_selector("#save-message.ok")
    confirmed = (await stored_evidence(database, sid))["10000008"]
    assert confirmed.self_study and confirmed.reflection
    await page.screenshot(path=artifacts_dir / "evidence-secretary.png", full_page=True)
    await page.set_viewport_size(PHONE)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the evidence page scrolls sideways on a phone ({width}px)"
    browser_errors.check()


async def test_rows_outside_the_cell_are_refused_and_a_viewer_only_reads(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors, tmp_path: Path
) -> None:
    url, sid, database = server["url"], server["sid"], server["database"]
    await sign_in(page, f"{url}/sessions/{sid}/evidence", "bi.thu")
    await page.wait_for_selector(row("10000001"))
    # a quiz file that also holds a member of the neighbouring cell: refused whole, row named
    quiz = tmp_path / "ca-huyen.csv"
    quiz.write_text("ma_the,diem\n10000001,9\n10000003,8\n", encoding="utf-8")
    await page.set_input_files("#quiz-file", str(quiz))
    with browser_errors.tolerate(REFUSED):
        await page.click("#quiz-upload-button")
        await page.wait_for_selector("#quiz-errors:not([hidden]) li")
    assert "ngoài phạm vi" in await page.text_content("#quiz-message")
    assert await page.locator("#quiz-errors li").all_text_contents() == [
        "Dòng 2: unit CB2 is outside your scope"
    ]
    assert await stored_evidence(database, sid) == {}
    await page.click("#sign-out")
    await page.wait_for_selector("#signin:not([hidden])")

    # a viewer of the cell sees the list, and nothing that would change it
    await sign_in(page, f"{url}/sessions/{sid}/evidence", "lan.vt")
    await page.wait_for_selector(row("10000001"))
    assert await page.is_visible(".read-only")
    assert await page.locator("input.reflection").evaluate_all(
        "boxes => boxes.every(b => b.disabled)"
    )
    for hidden in ("#save-evidence", "#quiz-upload", "button.confirm-self-study"):
        assert await page.locator(hidden).evaluate_all(
            "ns => ns.every(n => !n.checkVisibility())"
        ), hidden
    browser_errors.check()


async def test_the_page_shows_reflections_scores_and_self_study_once_recorded(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors
) -> None:
    """The records carry the evidence (RECORD's reflection, quiz_score, completed): ticked
    boxes, scores and a confirmed self-study member read back after a reload."""
    url, sid, api = server["url"], server["sid"], server["api"]
    await api.call(
        "POST",
        f"/api/v1/sessions/{sid}/evidence",
        200,
        json={
            "evidence": [
                {"member": "10000001", "reflection": True, "quiz_score": 9},
                {"member": "10000002", "reflection": True, "quiz_score": 3},
                {"member": "10000008", "reflection": True, "self_study": True},
            ]
        },
    )
    await sign_in(page, f"{url}/sessions/{sid}/evidence", "bi.thu")
    await page.wait_for_selector(row("10000001"))
    assert await page.is_checked(f"{row('10000001')} input.reflection")
    assert not await page.is_checked(f"{row('10000007')} input.reflection")
    assert "9" in await page.text_content(f"{row('10000001')} td.quiz")
    assert "chưa đạt" in await page.text_content(f"{row('10000002')} td.quiz")
    assert await page.get_attribute(row("10000008"), "data-status") == "self_study"
    completed = await page.locator("#evidence-body tr td.completed").evaluate_all(
        "cells => cells.map(c => [c.parentElement.dataset.member, c.classList.contains('ok')])"
    )
    assert dict(completed) == {
        "10000001": True,
        "10000002": False,
        "10000007": False,
        "10000008": False,  # no quiz score yet
    }
    browser_errors.check()


async def test_the_closed_session_shows_completion_per_unit(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    url, sid, api = server["url"], server["sid"], server["api"]
    # CB1: 10000001 completes (reflection, 8 >= 5); 10000002 fails the quiz; CB2: 10000003 completes
    await api.call(
        "POST",
        f"/api/v1/sessions/{sid}/evidence",
        200,
        json={
            "evidence": [
                {"member": "10000001", "reflection": True, "quiz_score": 8},
                {"member": "10000002", "reflection": True, "quiz_score": 4.5},
                {"member": "10000003", "reflection": True, "quiz_score": 10},
            ]
        },
    )
    await api.call("POST", f"/api/v1/sessions/{sid}/close", 200)
    await sign_in(page, f"{url}/sessions/{sid}", "quan.tri")
    await page.wait_for_selector("#summary:not([hidden]) tr[data-summary-unit='CB1']")
    assert await page.locator("table.summary th.completion:visible").count() == 2
    completed = await page.locator("#summary td.completion[data-completed]").evaluate_all(
        "cs => cs.map(c => [c.parentElement.dataset.summaryUnit, Number(c.dataset.completed)])"
    )
    assert dict(completed) == {"TU": 2, "DB1": 2, "CB1": 1, "CB2": 1, "DB2": 0, "CB3": 0, "": 2}
    cb1 = await page.text_content("tr[data-summary-unit='CB1'] td.completion-rate")
    assert cb1.strip() == "25%", cb1  # 1 of the cell's 4 members
    await page.screenshot(path=artifacts_dir / "evidence-completion.png", full_page=True)
    browser_errors.check()


async def test_a_new_session_takes_requirements_and_a_plan_rule(
    server: dict[str, Any], page: Any, browser_errors: BrowserErrors, artifacts_dir: Path
) -> None:
    url, api = server["url"], server["api"]
    await sign_in(page, url + "/", "quan.tri")
    await page.click("#new-session-toggle")
    await page.wait_for_selector('input[name=audience][value="DB1"]')
    await page.fill("#f-title", "Quán triệt Nghị quyết 57")
    hanoi = now() + timedelta(hours=7)  # the page's wall clock (Asia/Ho_Chi_Minh)
    await page.fill("#f-starts", (hanoi - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.fill("#f-ends", (hanoi + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.check('input[name=audience][value="DB1"]')
    # the levels offered are those under the audience, named by their units
    options = await page.locator("#f-plan-depth option").all_text_contents()
    assert any("Chi bộ Đồng Phúc" in o and "Chi bộ Nam Mẫu" in o for o in options), options
    assert not any("Côn Minh" in o for o in options), options
    await page.check("#f-reflection")
    await page.fill("#f-quiz-pass", "7.5")
    await page.fill("#f-quiz-max", "10")
    await page.select_option("#f-plan-depth", "2")
    await page.check("#f-plan-heads")
    await page.fill("#f-plan-due", "2030-06-30T17:00")
    await page.screenshot(path=artifacts_dir / "evidence-new-session.png", full_page=True)
    await page.click("#session-form button[type=submit]")
    await page.wait_for_url("**/sessions/*")
    sid = int(page.url.rsplit("/", 1)[1])
    session = await api.call("GET", f"/api/v1/sessions/{sid}", 200)
    assert session["requires"] == {"reflection": True, "quiz_pass": 7.5, "quiz_max": 10}
    assert session["plans"]["depth"] == 2 and session["plans"]["heads"] is True
    assert session["plans"]["due"].startswith("2030-06-30T10:00")  # 17:00 in Hà Nội

    # the action plans: both cells owe the committee's and the head's; one is recorded here
    await page.wait_for_selector("#plans:not([hidden]) tr[data-unit='CB1']")
    assert "2 tổ chức" in await page.text_content("#plans-missing")
    await page.click("#plans-body tr[data-unit='CB1'] td[data-kind='committee'] button.record-plan")
    await page.wait_for_selector("#plan-dialog[open]")
    await page.fill("#plan-note", "Kế hoạch số 12-KH/CB")
    await page.click("#plan-confirm")
    await page.wait_for_selector("#plans-message.ok")
    assert await page.get_attribute("#plans-body tr[data-unit='CB1']", "data-missing") == "1"
    assert "Kế hoạch số 12-KH/CB" in await page.text_content(
        "#plans-body tr[data-unit='CB1'] td[data-kind='committee']"
    )
    await page.screenshot(path=artifacts_dir / "evidence-plans.png", full_page=True)
    plans = await api.call("GET", f"/api/v1/sessions/{sid}/plans", 200)
    cb1 = next(u for u in plans["units"] if u["code"] == "CB1")
    assert cb1["committee"]["recorded_by"] == "quan.tri" and cb1["missing"] == ["head"]
    browser_errors.check()
