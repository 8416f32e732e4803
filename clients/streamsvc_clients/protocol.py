"""The coordinator's side of `/ws/checkin`, written once for every client that checks in.

`CheckinLink` connects, says hello and waits for the welcome, then sends frames (one event or a
batch, each encoded once) with a bounded window in flight and matches each ack to its frame in
order, since the service answers frames in the order it got them. When the connection drops it
reconnects with `Backoff` and sends every frame not yet acknowledged again, oldest first; the
event ids make that harmless (the service answers `duplicate`). A refused token ends `run()`
with `Unauthorized` at once: retrying cannot help.

Users differ only in where frames come from and what an ack means to them, so those are hook
methods a subclass overrides (`refill`, `replied`, `welcomed`, `lost`, `requeued`,
`connection_changed`); the terminal client marks its outbox, the load generator counts and
times each frame, the demo only sends. The send and receive loops do per frame no more than a
hand-written loop would: the load generator drives a thousand sites from one process with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

__all__ = [
    "CLOSE_UNAUTHORIZED",
    "MAX_BATCH",
    "Backoff",
    "CheckinLink",
    "Frame",
    "ProtocolError",
    "Unauthorized",
    "encode_frame",
    "ws_url",
]

MAX_BATCH = 1000  # events in one batch frame, as the contract allows
CLOSE_UNAUTHORIZED = 4401
CLOSE_TRY_AGAIN_LATER = 1013  # the service cannot store right now: back off and resend
REFUSED = "the server refused the site token"

# what a dropped or failed connection raises; the link reconnects after each
CONNECTION_ERRORS = (ConnectionClosed, InvalidHandshake, OSError, TimeoutError)


def retry_after(exc: BaseException) -> float | None:
    """The seconds a `503 busy` answer to the upgrade asks the device to wait (the service's
    admission of a reconnecting crowd), or None."""
    if not isinstance(exc, InvalidStatus) or exc.response.status_code != 503:
        return None
    try:
        return max(0.0, float(exc.response.headers.get("Retry-After", "")))
    except ValueError:
        return None


class Unauthorized(Exception):
    """The service refused the site token: retrying cannot help."""


class ProtocolError(Exception):
    """The service answered something the client did not expect; reconnect and resend."""


def ws_url(server: str, path: str = "/ws/checkin") -> str:
    """`http://host:port[/prefix]` → `ws://host:port[/prefix]/ws/checkin` (`wss` for https)."""
    parts = urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"


class Backoff:
    """Jittered exponential backoff between reconnection attempts, reset after a good
    connection (as python-websockets' client does): a thousand sites cut at once do not
    come back in step, and one that got in again starts from a short wait. `CheckinLink`
    does not count a welcome closed 1013 before any ack as good."""

    __slots__ = ("attempts", "delay", "initial", "maximum")

    def __init__(self, initial: float = 0.5, maximum: float = 10.0) -> None:
        self.initial, self.maximum = initial, maximum
        self.delay = initial
        self.attempts = 0  # failed attempts since the last reset

    def next(self) -> float:
        """Seconds to wait before the next attempt: between half and all of the current
        delay, which then doubles up to the maximum."""
        wait = self.delay * random.uniform(0.5, 1.0)
        self.delay = min(self.maximum, self.delay * 2)
        self.attempts += 1
        return wait

    def reset(self) -> None:
        self.delay, self.attempts = self.initial, 0


@dataclass(slots=True)
class Frame:
    """One websocket frame, a single event or a batch, encoded once and resent as is.
    `events` keeps what the sender wants back with the ack (the outbox's events)."""

    payload: bytes
    ids: list[str]
    sent_at: float = 0.0
    sends: int = 0
    events: list[dict[str, Any]] | None = None


def encode_frame(events: Sequence[dict[str, Any]], *, keep: bool = False) -> Frame:
    """A frame for these events: the event itself when alone, else a batch (at most
    `MAX_BATCH`); `keep` stores the events on the frame for the ack's hook."""
    if not 0 < len(events) <= MAX_BATCH:
        raise ValueError(f"a frame carries 1 to {MAX_BATCH} events, not {len(events)}")
    message = events[0] if len(events) == 1 else {"type": "batch", "items": list(events)}
    return Frame(
        orjson.dumps(message), [e["id"] for e in events], events=list(events) if keep else None
    )


class CheckinLink:
    """One site's connection to `/ws/checkin`, kept up until stopped or, once `finish()` is
    called, until every frame is acknowledged.

    Frames come from `put()` or, when the queue is empty, from `refill()`. `start`, if given,
    holds frames back after the welcome until it is set (the load generator's start line);
    `interval` paces frames evenly (seconds between two); `connect_gate` bounds how many
    handshakes run at once across links.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        device: str,
        window: int = 4,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        interval: float = 0.0,
        start: asyncio.Event | None = None,
        connect_gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.url, self.token, self.device = url, token, device
        self.window = window
        self.backoff = backoff or Backoff()
        self.open_timeout, self.ping_interval = open_timeout, ping_interval
        self.interval = interval
        self.start, self.connect_gate = start, connect_gate
        self._stop = asyncio.Event()
        self.pending: deque[Frame] = deque()
        self.inflight: deque[Frame] = deque()
        self.connected = False
        self.welcome: dict[str, Any] | None = None
        self.connections = 0  # welcomes received
        self.answered = 0  # frames answered (ack or error), over all connections
        self.finishing = False
        self._wake = asyncio.Event()

    # --- hooks: a subclass overrides what it needs ---------------------------------------

    def refill(self) -> Frame | None:
        """The next frame to send when the queue is empty (None: nothing yet)."""
        return None

    def replied(self, at: float, frame: Frame, message: dict[str, Any]) -> None:
        """The service's ack or error for `frame` (`at`: `time.perf_counter()` on arrival).
        Raising `ProtocolError` keeps the frame unacknowledged and reconnects."""

    def welcomed(self, welcome: dict[str, Any]) -> None:
        """A connection is up and the service said welcome."""

    def lost(self, established: bool, exc: BaseException) -> None:
        """A connection dropped (`established`) or an attempt failed; the link retries
        after a backoff. An exception raised here ends `run()` with it (giving up)."""

    def requeued(self, frames: Sequence[Frame]) -> None:
        """These frames were in flight when the connection dropped: they go again first."""

    def connection_changed(self, connected: bool) -> None:
        """The link went up or down."""

    # --- control ---------------------------------------------------------------------------

    def put(self, frame: Frame) -> None:
        """Queue a frame; it is sent as soon as the window allows."""
        self.pending.append(frame)
        self._wake.set()

    def wake(self) -> None:
        """`refill()` has something new: look again."""
        self._wake.set()

    def finish(self) -> None:
        """Nothing more will come: `run()` returns once everything is acknowledged."""
        self.finishing = True
        self._wake.set()
        if self.drained():
            self.stop()

    def stop(self) -> None:
        """Return from `run()` now; what is unacknowledged stays queued."""
        self._stop.set()
        self._wake.set()

    def drained(self) -> bool:
        """Nothing queued, in flight or left to refill."""
        if self.pending or self.inflight:
            return False
        frame = self.refill()
        if frame is None:
            return True
        self.pending.append(frame)
        return False

    @property
    def unacked_events(self) -> int:
        return sum(len(f.ids) for f in self.pending) + sum(len(f.ids) for f in self.inflight)

    # --- the connection --------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, send, reconnect, until `stop()`, or `finish()` and all acknowledged.
        Raises `Unauthorized` when the service refuses the token."""
        stop = self._stop
        if self.finishing and self.drained():
            return
        backoff = self.backoff
        while not stop.is_set():
            told: float | None = None
            established = False
            before = (backoff.delay, backoff.attempts)
            answered = self.answered
            try:
                ws = await self._connect()
                async with ws:
                    await self._hello(ws)
                    established = True
                    backoff.reset()
                    self._set_connected(True)
                    try:
                        await self._exchange(ws)
                    finally:
                        self._set_connected(False)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code == CLOSE_UNAUTHORIZED:
                    raise Unauthorized(REFUSED) from None
                if code == CLOSE_TRY_AGAIN_LATER and self.answered == answered:
                    # Welcomed, then turned away before any ack (the service cannot store):
                    # not a good connection, so the wait keeps growing. Reset, a thousand
                    # devices would come back every half second while the store is failing.
                    backoff.delay, backoff.attempts = before
                self.lost(established, exc)
            except (ProtocolError, *CONNECTION_ERRORS) as exc:
                told = retry_after(exc)
                self.lost(established, exc)
            finally:
                self._requeue()
            if stop.is_set() or (self.finishing and self.drained()):
                return
            wait = self.backoff.next()
            if told is not None:  # the service's own wait, with jitter so a crowd spreads
                wait = max(wait, told * random.uniform(1.0, 1.25))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def _connect(self) -> ClientConnection:
        gate = self.connect_gate
        if gate is None:
            return await self._open()
        async with gate:
            return await self._open()

    def _open(self) -> connect:
        return connect(
            self.url,
            open_timeout=self.open_timeout,
            close_timeout=2,
            ping_interval=self.ping_interval,
            ping_timeout=20,
            max_size=None,
            compression=None,
            proxy=None,
        )

    async def _hello(self, ws: ClientConnection) -> None:
        hello = {"type": "hello", "token": self.token, "client": self.device}
        await ws.send(orjson.dumps(hello), text=True)
        reply = _loads(await asyncio.wait_for(ws.recv(decode=False), self.open_timeout))
        if reply.get("type") == "error" and reply.get("code") == "unauthorized":
            raise Unauthorized(f"unauthorized: {reply.get('message') or REFUSED}")
        if reply.get("type") != "welcome":
            raise ProtocolError(f"expected welcome, got {reply.get('type')!r}")
        self.welcome = reply
        self.connections += 1
        self.welcomed(reply)

    async def _exchange(self, ws: ClientConnection) -> None:
        """One connection's life: a sender and a receiver sharing the frames in flight."""
        sender = asyncio.create_task(self._send(ws))
        receiver = asyncio.create_task(self._receive(ws))
        stop = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                (sender, receiver, stop), return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stop:
                    task.result()  # raises what ended the connection
        finally:
            for task in (sender, receiver, stop):
                task.cancel()
            for task in (sender, receiver, stop):
                with contextlib.suppress(asyncio.CancelledError, ProtocolError, *CONNECTION_ERRORS):
                    await task

    async def _send(self, ws: ClientConnection) -> None:
        if self.start is not None:
            await self.start.wait()
        pending, inflight, wake = self.pending, self.inflight, self._wake
        window, interval, clock = self.window, self.interval, time.perf_counter
        next_at = clock() + random.uniform(0, interval) if interval else 0.0
        while True:
            wake.clear()
            while len(inflight) < window:
                if interval:
                    delay = next_at - clock()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at = max(next_at + interval, clock() - interval)
                frame = pending.popleft() if pending else self.refill()
                if frame is None:
                    break
                inflight.append(frame)
                frame.sends += 1
                frame.sent_at = clock()
                await ws.send(frame.payload, text=True)
            await wake.wait()

    async def _receive(self, ws: ClientConnection) -> None:
        inflight, wake, clock = self.inflight, self._wake, time.perf_counter
        while True:
            raw = await ws.recv(decode=False)
            at = clock()
            message = _loads(raw)
            kind = message.get("type")
            if kind != "ack" and kind != "error":
                continue
            if not inflight:
                raise ProtocolError(f"{kind} with no frame in flight")
            if kind == "error" and message.get("code") == "unauthorized":
                raise Unauthorized(f"unauthorized: {message.get('message') or REFUSED}")
            # the frame leaves the window only once its hook accepted the answer
            self.replied(at, inflight[0], message)
            inflight.popleft()
            self.answered += 1
            wake.set()
            if self.finishing and not inflight and self.drained():
                return

    def _requeue(self) -> None:
        if self.inflight:
            frames = list(self.inflight)
            self.inflight.clear()
            self.pending.extendleft(reversed(frames))
            self.requeued(frames)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.connection_changed(connected)


def _loads(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtocolError("a frame that is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("a frame that is not a JSON object")
    return data
