"""`GET /api/v1/sessions/{sid}/roster`: the check-in page's roster, on both stores."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from builders import MEMBERS, add_site, checkin, iso, now, open_session, seed_roster


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def send(client, sid: int, token: str, *events) -> list[dict]:
    r = await client.post(
        f"/api/v1/sessions/{sid}/checkins", json={"items": list(events)}, headers=bearer(token)
    )
    assert r.status == 200, await r.text()
    return (await r.json())["results"]


async def roster(client, sid: int, token: str) -> dict:
    r = await client.get(f"/api/v1/sessions/{sid}/roster", headers=bearer(token))
    assert r.status == 200, await r.text()
    return await r.json()


async def test_a_site_with_a_unit_lists_the_expected_members_of_its_subtree(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["TU"])
    sid = session["id"]
    ba_be = await add_site(client, admin_headers, sid, name="Điểm cầu Ba Bể", unit="DB1")
    hall = await add_site(client, admin_headers, sid, name="Hội trường tỉnh")

    body = await roster(client, sid, ba_be["token"])
    assert body["session"] == sid and body["site"] == ba_be["id"]
    assert body["members"] == [
        {**m, "unit_name": {"CB1": "Chi bộ Đồng Phúc", "CB2": "Chi bộ Nam Mẫu"}[m["unit"]]}
        for m in MEMBERS
        if m["unit"] in ("CB1", "CB2")
    ]
    assert (body["present"], body["here"], body["guests"]) == ([], [], None)

    first = checkin("10000001")
    mistaken = checkin("10000002")
    await send(client, sid, ba_be["token"], first, mistaken, checkin("10000001"))
    await send(client, sid, ba_be["token"], {"type": "void", "id": "v-1", "target": mistaken["id"]})
    await send(client, sid, hall["token"], checkin("10000005"), checkin("10000003"))
    t = now()
    await send(
        client,
        sid,
        ba_be["token"],
        {"type": "guests", "id": "g-2", "count": 12, "ts": iso(t)},
        {"type": "guests", "id": "g-1", "count": 7, "ts": iso(t - timedelta(seconds=30))},
    )
    await send(
        client, sid, hall["token"], {"type": "guests", "id": "g-3", "count": 99, "ts": iso(t)}
    )

    body = await roster(client, sid, ba_be["token"])
    # the listed members checked in anywhere (a voided check-in no longer counts; 10000005 of
    # CB3, checked in at the hall, is not on this site's list), and this site's own
    assert body["present"] == ["10000001", "10000003"]
    assert body["here"] == ["10000001"]
    assert body["guests"] == 12
    # the hall lists the whole audience: everyone checked in anywhere
    assert (await roster(client, sid, hall["token"]))["present"] == [
        "10000001", "10000003", "10000005",
    ]  # fmt: skip


async def test_a_site_without_a_unit_lists_the_whole_audience(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["CB1", "DB2"])
    site = await add_site(client, admin_headers, session["id"])
    body = await roster(client, session["id"], site["token"])
    assert [m["code"] for m in body["members"]] == ["10000001", "10000002", "10000005", "10000006"]
    assert body["members"][2]["unit_name"] == "Chi bộ Côn Minh"


async def test_a_site_unit_outside_the_audience_lists_no_one(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["DB2"])
    site = await add_site(client, admin_headers, session["id"], unit="DB1")
    assert (await roster(client, session["id"], site["token"]))["members"] == []


async def test_a_make_up_site_lists_the_excused_members_of_its_unit(client, admin_headers):
    await seed_roster(client, admin_headers)
    first = await open_session(client, admin_headers, audience=["TU"])
    for code in ("10000002", "10000005"):
        r = await client.post(
            f"/api/v1/sessions/{first['id']}/excuses",
            json={"member": code, "reason": "ốm"},
            headers=admin_headers,
        )
        assert r.status == 201, await r.text()
    makeup = await open_session(client, admin_headers, audience=[], makeup_for=first["id"])
    site = await add_site(client, admin_headers, makeup["id"], unit="DB1")
    body = await roster(client, makeup["id"], site["token"])
    assert [m["code"] for m in body["members"]] == ["10000002"]


async def test_the_roster_is_sent_gzipped_when_asked(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    site = await add_site(client, admin_headers, session["id"])
    r = await client.get(
        f"/api/v1/sessions/{session['id']}/roster",
        headers={**bearer(site["token"]), "Accept-Encoding": "gzip"},
    )
    assert r.status == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Cache-Control"] == "no-store"
    assert len((await r.json())["members"]) == len(MEMBERS)


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("nobody", 401, "unauthorized"),
        ("unknown", 401, "unauthorized"),
        ("admin", 403, "forbidden"),
        ("other_session_site", 403, "forbidden"),
    ],
)
async def test_the_roster_needs_this_sessions_site_token(client, admin_headers, who, status, code):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    other = await open_session(client, admin_headers)
    other_site = await add_site(client, admin_headers, other["id"])
    headers = {
        "nobody": {},
        "unknown": bearer("not-a-token"),
        "admin": admin_headers,
        "other_session_site": bearer(other_site["token"]),
    }[who]
    r = await client.get(f"/api/v1/sessions/{session['id']}/roster", headers=headers)
    assert r.status == status
    assert (await r.json())["error"]["code"] == code


async def test_an_unknown_session_is_not_found(client, admin_headers):
    r = await client.get("/api/v1/sessions/x1/roster", headers=admin_headers)
    assert r.status == 404


async def test_the_checkin_page_and_its_worker_are_served(client):
    r = await client.get("/checkin")
    assert r.status == 200
    html = await r.text()
    assert "__LABELS__" not in html and "Quét thẻ, nhập số thẻ hoặc tên" in html
    r = await client.get("/checkin-sw.js")
    assert r.status == 200
    assert r.content_type == "text/javascript"
    assert r.headers["Cache-Control"] == "no-cache"
    # the worker keeps every module the page imports, so that the page reloads offline
    shell = checkin_shell()
    assert {f"/static/{name}" for name in imported_modules("checkin.js")} <= set(shell)
    for path in shell:
        assert (await client.get(path)).status == 200, path


def checkin_shell() -> list[str]:
    from streamsvc.web.pages import STATIC

    worker = (STATIC / "checkin-sw.js").read_text()
    return re.findall(r'"(/[^"]*)"', worker.split("const SHELL = [", 1)[1].split("];", 1)[0])


def imported_modules(entry: str) -> set[str]:
    """`entry` and every static module it imports, directly or not."""
    from streamsvc.web.pages import STATIC

    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += re.findall(r'(?:from|import) "\./([\w./-]+)"', (STATIC / name).read_text())
    return seen


def test_every_label_the_checkin_page_uses_exists():
    from streamsvc.domain.checkin import REASONS
    from streamsvc.domain.models import FORMS
    from streamsvc.web.labels import LABELS
    from streamsvc.web.pages import STATIC

    js = "".join((STATIC / name).read_text() for name in imported_modules("checkin.js"))
    html = (STATIC / "checkin.html").read_text()
    used = set(re.findall(r'\bt\(\s*"([a-z_]+)"', js))
    used |= set(re.findall(r'data-l(?:-[a-z-]+)?="([a-z_]+)"', html))
    used |= set(re.findall(r'"(status_[a-z_]+)"', js))
    used |= {f"reason_{r}" for r in REASONS} | {f"kind_{f}" for f in FORMS}
    known = LABELS["common"].keys() | LABELS["checkin"].keys()
    assert used - known == set()
    assert len(used) > 40
