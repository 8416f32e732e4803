"""Live check-in over the websocket and the HTTP fallback: each contract rule, both stores; the
admission of a crowd of devices connecting at once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import aiohttp
import pytest
from aiohttp import WSMsgType
from builders import add_site, checkin, iso, now, open_session, seed_roster

from streamsvc.web import keys


@pytest.fixture
async def site(client, admin_headers):
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers, audience=["DB1"])
    return await add_site(client, admin_headers, session["id"], name="Điểm cầu Ba Bể")


async def hello(client, token: str):
    ws = await client.ws_connect("/ws/checkin")
    await ws.send_json({"type": "hello", "token": token, "client": "test-device"})
    return ws, await ws.receive_json()


async def test_hello_welcome_then_every_result_kind_in_order(client, site):
    ws, welcome = await hello(client, site["token"])
    assert welcome["type"] == "welcome"
    assert welcome["site"]["id"] == site["id"]
    assert welcome["session"]["id"] == site["session"]
    assert welcome["server_time"].endswith("Z")

    first = checkin("10000001")
    again = checkin("10000001")
    outsider = checkin("10000005")  # exists, not in DB1: accepted, not expected
    batch = [
        first,
        checkin("99999999"),  # unknown member
        {"type": "checkin", "id": str(uuid.uuid4()), "member": "10000002"},  # no ts
        checkin("10000002", ts=now() - timedelta(hours=3)),  # before the window
        checkin("10000002", ts=now() + timedelta(hours=1)),  # in the future
        {"type": "void", "id": str(uuid.uuid4()), "target": "no-such-event"},
        again,
        outsider,
        {"type": "guests", "id": str(uuid.uuid4()), "count": 12, "ts": iso(now())},
        {"type": "checkout", "id": str(uuid.uuid4()), "member": "10000001", "ts": iso(now())},
        first,  # the same id again in the same batch
    ]
    await ws.send_json({"type": "batch", "items": batch})
    ack = await ws.receive_json()
    assert ack["type"] == "ack"
    results = ack["results"]
    assert [r["id"] for r in results] == [e["id"] for e in batch]
    assert [r["result"] for r in results] == [
        "accepted", "rejected", "rejected", "rejected", "rejected", "rejected",
        "accepted", "accepted", "accepted", "accepted", "duplicate",
    ]  # fmt: skip
    assert [r.get("reason") for r in results[1:6]] == [
        "unknown_member", "invalid", "ts_out_of_window", "ts_out_of_window", "unknown_target",
    ]  # fmt: skip
    assert results[0]["member"] == {
        "code": "10000001",
        "full_name": "Nguyễn Văn An",
        "unit": "CB1",
        "unit_name": "Chi bộ Đồng Phúc",  # an addition to the contract, for the screen
    }
    assert "already_present" not in results[0]
    present = results[6]["already_present"]
    assert present["site"] == site["id"]
    assert present["site_name"] == "Điểm cầu Ba Bể"
    seen = datetime.fromisoformat(present["ts"].replace("Z", "+00:00"))
    assert abs(seen - datetime.fromisoformat(first["ts"].replace("Z", "+00:00"))) < timedelta(
        seconds=1
    )

    await ws.send_json(first)  # a resend after reconnecting: harmless
    assert (await ws.receive_json())["results"] == [{"id": first["id"], "result": "duplicate"}]
    await ws.close()


async def test_void_takes_back_a_checkin_of_this_site_only(client, admin_headers, site):
    ws, _ = await hello(client, site["token"])
    event = checkin("10000003")
    await ws.send_json(event)
    assert (await ws.receive_json())["results"][0]["result"] == "accepted"
    void = {"type": "void", "id": str(uuid.uuid4()), "target": event["id"]}
    await ws.send_json(void)
    assert (await ws.receive_json())["results"][0]["result"] == "accepted"
    # the member is no longer present: a new check-in is not "already present"
    await ws.send_json(checkin("10000003"))
    assert "already_present" not in (await ws.receive_json())["results"][0]
    other = await add_site(client, admin_headers, site["session"], name="Khác")
    ws2, _ = await hello(client, other["token"])
    await ws2.send_json({"type": "void", "id": str(uuid.uuid4()), "target": event["id"]})
    assert (await ws2.receive_json())["results"][0]["reason"] == "unknown_target"
    await ws.close()
    await ws2.close()


async def test_bad_frames_get_bad_message_and_the_connection_stays(client, site):
    ws, _ = await hello(client, site["token"])
    for frame in ("not json", '{"type": "dance"}', "[1,2]", '{"type": "batch", "items": []}'):
        await ws.send_str(frame)
        reply = await ws.receive_json()
        assert (reply["type"], reply["code"]) == ("error", "bad_message")
    await ws.send_json(checkin("10000004"))
    assert (await ws.receive_json())["results"][0]["result"] == "accepted"
    await ws.close()


async def test_a_frame_over_one_mebibyte_closes_with_1009(client, site):
    ws, _ = await hello(client, site["token"])
    await ws.send_str('{"type": "batch", "items": ["' + "x" * (1024 * 1024) + '"]}')
    msg = await ws.receive()
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == 1009


@pytest.mark.parametrize("token", ["wrong", "", None])
async def test_a_bad_token_gets_unauthorized_and_close_4401(client, site, token):
    ws = await client.ws_connect("/ws/checkin")
    await ws.send_json({"type": "hello", "token": token, "client": "x"})
    reply = await ws.receive_json()
    assert (reply["type"], reply["code"]) == ("error", "unauthorized")
    msg = await ws.receive()
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert ws.close_code == 4401


async def test_events_before_hello_are_refused(client, site):
    ws = await client.ws_connect("/ws/checkin")
    await ws.send_json(checkin("10000001"))
    assert (await ws.receive_json())["code"] == "unauthorized"
    await ws.receive()
    assert ws.close_code == 4401


async def test_after_close_offline_events_in_the_window_are_late_uploads(
    client, admin_headers, site
):
    sid = site["session"]
    seen_before_close = checkin("10000002")
    r = await client.post(f"/api/v1/sessions/{sid}/close", headers=admin_headers)
    assert r.status == 200
    late = checkin("10000004")  # ts after the close
    headers = {"Authorization": f"Bearer {site['token']}"}
    r = await client.post(
        f"/api/v1/sessions/{sid}/checkins",
        json={"items": [seen_before_close, late]},
        headers=headers,
    )
    results = (await r.json())["results"]
    assert results[0]["result"] == "accepted"
    assert (results[1]["result"], results[1]["reason"]) == ("rejected", "session_closed")


async def test_http_fallback_answers_exactly_like_the_websocket(client, site):
    items = [checkin("10000001"), checkin("nope"), checkin("10000001")]
    headers = {"Authorization": f"Bearer {site['token']}"}
    r = await client.post(
        f"/api/v1/sessions/{site['session']}/checkins", json={"items": items}, headers=headers
    )
    assert r.status == 200
    results = (await r.json())["results"]
    assert [x["result"] for x in results] == ["accepted", "rejected", "accepted"]
    r = await client.post(
        f"/api/v1/sessions/{site['session']}/checkins", json={"items": items}, headers=headers
    )
    assert [x["result"] for x in (await r.json())["results"]] == [
        "duplicate",
        "rejected",
        "duplicate",
    ]


async def test_pipelined_frames_get_acks_in_order(client, site):
    ws, _ = await hello(client, site["token"])
    sent = [checkin(code) for code in ("10000001", "10000002", "10000003", "10000004")] * 5
    for event in sent:
        await ws.send_json(event)
    acked = [(await ws.receive_json())["results"][0]["id"] for _ in sent]
    assert acked == [e["id"] for e in sent]
    await ws.close()


async def test_a_device_connecting_after_the_close_is_told_the_session_is_closed(
    client, admin_headers, site
):
    ws, welcome = await hello(client, site["token"])
    assert welcome["session"]["state"] == "open"
    await ws.close()
    r = await client.post(f"/api/v1/sessions/{site['session']}/close", headers=admin_headers)
    assert r.status == 200
    ws, welcome = await hello(client, site["token"])
    assert welcome["session"]["state"] == "closed"
    await ws.close()


async def test_a_nul_in_a_stored_text_is_rejected_alone(client, site):
    """PostgreSQL cannot store a NUL: such an event must be refused by itself, not fail the
    group commit that carries every device's events (and come back forever as a resend)."""
    ws, _ = await hello(client, site["token"])
    good = checkin("10000001")
    batch = [
        checkin("1000\x000002"),
        {**checkin("10000003"), "id": "nul\x00id"},
        {"type": "void", "id": str(uuid.uuid4()), "target": "t\x00"},
        good,
    ]
    await ws.send_json({"type": "batch", "items": batch})
    results = (await ws.receive_json())["results"]
    assert [r["result"] for r in results] == ["rejected", "rejected", "rejected", "accepted"]
    assert {r.get("reason") for r in results[:3]} == {"invalid"}
    await ws.send_json(good)
    assert (await ws.receive_json())["results"] == [{"id": good["id"], "result": "duplicate"}]
    await ws.close()


# -- admission of a crowd connecting at once (services.admission): past the instance's rate
# a device is told 503 busy with Retry-After before any websocket is made, the sites already
# in go on, and the refusals are counted in /metrics


async def test_the_admission_rate_is_the_setting(client, settings):
    assert client.app[keys.admission_key].rate == settings.connect_rate == 500


async def test_past_the_rate_a_device_is_told_busy_and_the_sites_in_go_on(client, site):
    # two at once, then (practically) none: the third is refused however slow the machine
    admission = client.app[keys.admission_key]
    admission.rate, admission.tokens = 0.001, 2.0
    first, _ = await hello(client, site["token"])
    second, _ = await hello(client, site["token"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/checkin")
    assert refused.value.status == 503
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 30
    # the answer is the contract's error shape (read as plain HTTP: no upgrade happens)
    r = await client.get("/ws/checkin")
    assert r.status == 503
    assert (await r.json())["error"]["code"] == "busy"
    for ws, member in ((first, "10000001"), (second, "10000002")):
        await ws.send_json(checkin(member))
        assert (await ws.receive_json())["results"][0]["result"] == "accepted"
        await ws.close()
    metrics = await (await client.get("/metrics")).text()
    assert "streamsvc_connections_refused_total 2.0" in metrics


async def test_nobody_is_let_in_while_the_commits_are_behind(client, site):
    backlog = {"frames": 5000}
    admission = client.app[keys.admission_key]
    admission.backlog, admission.backlog_limit = lambda: backlog["frames"], 2000
    r = await client.get("/ws/checkin")
    assert r.status == 503
    backlog["frames"] = 0
    ws, welcome = await hello(client, site["token"])
    assert welcome["type"] == "welcome"
    await ws.close()
