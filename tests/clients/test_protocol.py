"""The coordinator link every client shares (`streamsvc_clients.protocol`): backoff and URLs
as tables, then against the real app over a real socket: acks matched to frames in order,
a refused token, and a dropped connection whose unacknowledged frames go again."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp import WSCloseCode
from aiohttp.test_utils import TestClient
from builders import add_site, checkin, open_session, seed_roster
from serverproc import until
from streamsvc_clients.protocol import (
    MAX_BATCH,
    Backoff,
    CheckinLink,
    Frame,
    ProtocolError,
    Unauthorized,
    encode_frame,
    ws_url,
)

from streamsvc.web import keys

CODES = ["10000001", "10000002", "10000003", "10000004", "10000005", "10000006"]


@pytest.mark.parametrize(
    ("server", "path", "expected"),
    [
        ("http://h:8080", "/ws/checkin", "ws://h:8080/ws/checkin"),
        ("https://h", "/ws/checkin", "wss://h/ws/checkin"),
        ("http://h:8080/", "/ws/checkin", "ws://h:8080/ws/checkin"),
        ("https://h/att/", "/ws/monitor", "wss://h/att/ws/monitor"),
    ],
)
def test_ws_url(server: str, path: str, expected: str) -> None:
    assert ws_url(server, path) == expected


@pytest.mark.parametrize(
    ("initial", "maximum", "attempts", "delay_before_last"),
    [
        (0.5, 10.0, 1, 0.5),
        (0.5, 10.0, 3, 2.0),
        (0.5, 10.0, 6, 10.0),  # 16 capped at the maximum
        (0.05, 0.3, 4, 0.3),
    ],
)
def test_backoff_grows_jittered_up_to_its_maximum(
    initial: float, maximum: float, attempts: int, delay_before_last: float
) -> None:
    backoff = Backoff(initial, maximum)
    waits = [backoff.next() for _ in range(attempts)]
    assert delay_before_last / 2 <= waits[-1] <= delay_before_last
    assert backoff.attempts == attempts
    backoff.reset()
    assert backoff.attempts == 0 and initial / 2 <= backoff.next() <= initial


@pytest.mark.parametrize(("count", "kind"), [(1, "checkin"), (2, "batch"), (MAX_BATCH, "batch")])
def test_a_frame_is_the_event_alone_or_a_batch(count: int, kind: str) -> None:
    events = [checkin(CODES[i % 6]) for i in range(count)]
    frame = encode_frame(events)
    assert frame.ids == [e["id"] for e in events]
    assert f'"type":"{kind}"'.encode() in frame.payload


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_a_frame_holds_one_to_a_thousand_events(count: int) -> None:
    with pytest.raises(ValueError):
        encode_frame([checkin("10000001")] * count)


# --- against the real app --------------------------------------------------------------------


class Recorder(CheckinLink):
    """Keeps every answer; `fail_at` refuses the n-th ack once (as if it did not match)."""

    def __init__(self, url: str, token: str, fail_at: int | None = None, **kw: Any) -> None:
        kw.setdefault("backoff", Backoff(0.01, 0.05))
        super().__init__(url, token, device="test", **kw)
        self.fail_at = fail_at
        self.answers: list[tuple[list[str], list[dict[str, Any]]]] = []
        self.requeues: list[list[str]] = []
        self.on_answer: Any = None

    def replied(self, at: float, frame: Frame, message: dict[str, Any]) -> None:
        if len(self.answers) + 1 == self.fail_at:
            self.fail_at = None
            raise ProtocolError("refused by the test")
        self.answers.append((frame.ids, message["results"]))
        if self.on_answer is not None:
            self.on_answer()

    def requeued(self, frames: Sequence[Frame]) -> None:
        self.requeues.append([i for f in frames for i in f.ids])


async def _site(client: TestClient, admin_headers: dict[str, str]) -> tuple[str, str, int]:
    await seed_roster(client, admin_headers)
    session = await open_session(client, admin_headers)
    site = await add_site(client, admin_headers, session["id"])
    return str(client.server.make_url("/")), site["token"], session["id"]


def _frames(count: int, per_frame: int) -> list[Frame]:
    return [
        encode_frame([checkin(CODES[(i + j) % 6]) for j in range(per_frame)]) for i in range(count)
    ]


async def test_acks_are_matched_to_their_frames_in_order(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    server, token, _ = await _site(client, admin_headers)
    link = Recorder(ws_url(server), token, window=3)
    frames = _frames(4, 1) + _frames(3, 20) + [encode_frame([checkin("99999999")])]
    for frame in frames:
        link.put(frame)
    link.finish()
    await asyncio.wait_for(link.run(), 20)

    assert [ids for ids, _ in link.answers] == [f.ids for f in frames]
    for ids, results in link.answers:
        assert [r["id"] for r in results] == ids
    assert link.answers[-1][1][0]["reason"] == "unknown_member"
    assert link.connections == 1 and not link.pending and not link.inflight


async def test_a_refused_token_ends_run_without_retrying(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    server, _, _ = await _site(client, admin_headers)
    link = Recorder(ws_url(server), "not-a-token", backoff=Backoff(30, 60))
    link.put(encode_frame([checkin("10000001")]))
    with pytest.raises(Unauthorized, match="unauthorized"):
        await asyncio.wait_for(link.run(), 10)  # a retry would wait 15 s or more
    assert link.connections == 0 and link.backoff.attempts == 0


async def test_finish_with_nothing_queued_returns_and_stop_keeps_the_queue(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    server, token, _ = await _site(client, admin_headers)
    idle = Recorder(ws_url(server), token)
    idle.finish()
    await asyncio.wait_for(idle.run(), 5)
    assert idle.connections == 0

    held = Recorder(ws_url(server), token, start=asyncio.Event())  # connected, never sends
    held.put(encode_frame([checkin("10000001")]))
    runner = asyncio.create_task(held.run())
    await until(lambda: held.connected, 10, "the welcome")
    held.stop()
    await asyncio.wait_for(runner, 5)
    assert len(held.pending) == 1 and not held.answers


async def _stored(client: TestClient, session_id: int) -> Counter[str]:
    store = client.app[keys.store_key]
    return Counter([event.id async for event in store.iter_events(session_id)])


@pytest.mark.parametrize("drop", ["refused ack", "server closes"])
async def test_after_a_drop_every_unacked_frame_goes_again_and_is_stored_once(
    client: TestClient, admin_headers: dict[str, str], drop: str
) -> None:
    server, token, session_id = await _site(client, admin_headers)
    link = Recorder(ws_url(server), token, window=4, fail_at=2 if drop == "refused ack" else None)
    if drop == "server closes":
        closing: list[asyncio.Task[bool]] = []

        def close_all_once() -> None:
            link.on_answer = None
            for ws in list(client.app[keys.sockets_key]):
                closing.append(asyncio.create_task(ws.close(code=WSCloseCode.GOING_AWAY)))

        link.on_answer = close_all_once
    frames = _frames(12, 5)
    for frame in frames:
        link.put(frame)
    link.finish()
    await asyncio.wait_for(link.run(), 20)

    sent = [i for f in frames for i in f.ids]
    assert link.connections == 2
    assert link.requeues and link.requeues[0], "nothing was in flight at the drop"
    final = {
        i: r["result"] for ids, results in link.answers for i, r in zip(ids, results, strict=True)
    }
    assert set(final) == set(sent)
    assert set(final.values()) <= {"accepted", "duplicate"}
    if drop == "refused ack":  # that frame was stored before: its resend is a duplicate
        assert {final[i] for i in link.requeues[0][:5]} == {"duplicate"}
    stored = await _stored(client, session_id)
    assert set(stored) == set(sent) and max(stored.values()) == 1
