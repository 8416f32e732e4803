"""A frame over the limit closes the websocket with 1009, every time, on both websockets.

The service used to close the socket straight after its close frame while the client was still
sending the oversized frame; the kernel then answered the unread bytes with a reset. A client
that writes its whole message before it reads (a plain socket here, as many simple clients
and browsers do) got "connection reset" on its write, or the reset right after the close
frame; the `websockets` client, which reads while it writes, mostly got away with it. Both
are tried many times against a real server process (uvloop, as in production).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

import aiohttp
import orjson
import pytest
from builders import add_site, checkin, open_session, seed_roster
from conftest import ADMIN
from serverproc import ServerProcess
from streamsvc_clients.protocol import ws_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.slow  # a server process, a few hundred MiB through loopback

ROUNDS = 50
OVER_ONE_MIB = b"x" * (1024 * 1024 + 1)


@pytest.fixture
async def server(tmp_path, admin_headers):
    """A server process on SQLite with a session and a site: (base URL, session, site)."""
    proc = ServerProcess(f"sqlite:///{tmp_path / 'streamsvc.db'}", tmp_path / "server.log")
    await proc.start()
    try:
        async with aiohttp.ClientSession(base_url=proc.url) as http:
            await seed_roster(http, admin_headers)
            session = await open_session(http, admin_headers)
            site = await add_site(http, admin_headers, session["id"])
        yield proc.url, session, site
    finally:
        proc.stop()


async def _close_code_for_big_frame(url: str, hello: dict) -> int | None:
    """Say hello, send a frame over 1 MiB; the close code the client received."""
    async with connect(url, compression=None, max_size=None, close_timeout=10, proxy=None) as ws:
        await ws.send(orjson.dumps(hello), text=True)
        reply = orjson.loads(await ws.recv())
        assert reply["type"] in ("welcome", "snapshot"), reply
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send(OVER_ONE_MIB)
            while True:  # a delta may come before the close
                await ws.recv()
    received = closed.value.rcvd
    return received.code if received is not None else None


@pytest.mark.parametrize("path", ["/ws/checkin", "/ws/monitor"])
async def test_a_frame_over_one_mib_closes_with_1009_every_time(server, path):
    url, session, site = server
    if path == "/ws/checkin":
        hello = {"type": "hello", "token": site["token"], "client": "frame-limit-test"}
    else:
        hello = {"type": "hello", "token": ADMIN, "session": session["id"]}
    codes = [await _close_code_for_big_frame(ws_url(url, path), hello) for _ in range(ROUNDS)]
    assert codes == [1009] * ROUNDS


async def test_the_service_checks_in_after_a_connection_closed_for_a_big_frame(server):
    base, _, site = server
    url = ws_url(base)
    hello = {"type": "hello", "token": site["token"], "client": "frame-limit-test"}
    assert await _close_code_for_big_frame(url, hello) == 1009
    async with connect(url, compression=None, proxy=None) as ws:
        await ws.send(orjson.dumps(hello), text=True)
        assert orjson.loads(await ws.recv())["type"] == "welcome"
        event = checkin("10000001")
        await ws.send(orjson.dumps(event), text=True)
        ack = orjson.loads(await ws.recv())
    assert [(r["id"], r["result"]) for r in ack["results"]] == [(event["id"], "accepted")]


def _write_all_then_read(port: int, path: str, size: int) -> tuple[int | None, bytes]:
    """A plain-socket client: handshake, write a whole frame of `size` bytes, then read to the
    end. The close code received and what followed it; a reset raises `ConnectionResetError`."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 101"), reply
        # a binary frame, masked with a zero key (so the payload goes as it is)
        sock.sendall(struct.pack("!BBQ", 0x82, 0xFF, size) + bytes(4) + bytes(size))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    if len(received) < 4 or received[0] != 0x88:  # a close frame with a code
        return None, received
    return struct.unpack("!H", received[2:4])[0], received[2 + received[1] :]


@pytest.mark.parametrize("path", ["/ws/checkin", "/ws/monitor"])
@pytest.mark.parametrize("size", [1024 * 1024 + 1, 8 * 1024 * 1024])
async def test_a_client_that_writes_a_big_frame_before_reading_gets_1009_not_a_reset(
    server, path, size
):
    port = int(server[0].rsplit(":", 1)[1])
    for _ in range(ROUNDS if size < 2 * 1024 * 1024 else ROUNDS // 5):
        code, after = await asyncio.to_thread(_write_all_then_read, port, path, size)
        assert (code, after) == (1009, b"")  # the close frame, then the end of the stream
