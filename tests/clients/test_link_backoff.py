"""The coordinator link's backoff after a 1013 close: a connection the service turned away
before any ack (it cannot store) does not count as good, so the wait keeps growing instead of
starting again at the shortest after every welcome.

The service here is a bare websocket endpoint that welcomes, then closes 1013 at the first
frame (or acks it first): the answer the real service gives while its store fails, which
`tests/e2e/test_pg_restart.py` produces with a real PostgreSQL stopped."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import WSCloseCode, web
from builders import checkin
from serverproc import until
from streamsvc_clients.protocol import Backoff, CheckinLink, encode_frame

WELCOME = '{"type": "welcome", "session": {}, "site": {}, "server_time": "2026-01-01T00:00:00Z"}'


def turning_away(ack_first: bool) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the hello
        await ws.send_str(WELCOME)
        await ws.receive()  # the first frame
        if ack_first:
            await ws.send_str('{"type": "ack", "results": [{"id": "x", "result": "accepted"}]}')
            await ws.receive()
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"store unavailable")
        return ws

    app = web.Application()
    app.router.add_get("/ws/checkin", handler)
    return app


class Recording(CheckinLink):
    """Notes the backoff's delay each time a connection is lost."""

    def __init__(self, url: str) -> None:
        super().__init__(url, "token", device="t", window=1, backoff=Backoff(0.01, 0.08))
        self.delays: list[float] = []

    def lost(self, established: bool, exc: BaseException) -> None:
        self.delays.append(self.backoff.delay)
        self.put(encode_frame([checkin("10000001")]))  # something to send next time too


@pytest.mark.parametrize(
    ("ack_first", "expected"),
    [
        (False, [0.01, 0.02, 0.04, 0.08, 0.08]),  # turned away at once: keeps backing off
        (True, [0.01, 0.01, 0.01, 0.01, 0.01]),  # a connection that acked was a good one
    ],
    ids=["turned-away", "acked-then-closed"],
)
async def test_a_1013_close_before_any_ack_keeps_the_backoff_growing(
    aiohttp_server, ack_first: bool, expected: list[float]
) -> None:
    server = await aiohttp_server(turning_away(ack_first))
    link = Recording(f"ws://127.0.0.1:{server.port}/ws/checkin")
    link.put(encode_frame([checkin("10000001")]))
    link.put(encode_frame([checkin("10000002")]))
    task = asyncio.create_task(link.run())
    try:
        await until(lambda: len(link.delays) >= len(expected), 10, "five connections lost")
    finally:
        link.stop()
        await task
    assert link.delays[: len(expected)] == pytest.approx(expected)
    assert link.connections >= len(expected)  # each one was welcomed


async def test_a_503_busy_is_waited_out_for_its_retry_after_however_short_the_backoff(
    aiohttp_server,
) -> None:
    """The service's admission answers a crowd `503 busy` with Retry-After: the device waits
    that long (plus jitter), not its own shorter backoff."""
    attempts: list[float] = []
    loop = asyncio.get_running_loop()

    async def handler(request: web.Request) -> web.StreamResponse:
        attempts.append(loop.time())
        if len(attempts) == 1:
            return web.json_response(
                {"error": {"code": "busy", "message": "try again", "details": None}},
                status=503,
                headers={"Retry-After": "1"},
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the hello
        await ws.send_str(WELCOME)
        await ws.receive()
        return ws

    app = web.Application()
    app.router.add_get("/ws/checkin", handler)
    server = await aiohttp_server(app)
    link = CheckinLink(
        f"ws://127.0.0.1:{server.port}/ws/checkin", "token", device="t",
        backoff=Backoff(0.01, 0.08),
    )  # fmt: skip
    task = asyncio.create_task(link.run())
    try:
        await until(lambda: link.connections >= 1, 10, "welcomed after the busy answer")
    finally:
        link.stop()
        await task
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 1.0  # Retry-After, not the 10 ms backoff
