"""The live fan-out: each session's delta, framed once, to every monitor watching it here.

Monitors are grouped by (session, scope, options): a scope is the root unit of the subtree a
monitor sees (its user's unit, or the `unit` of its hello; None for the whole tree), the
options what its hello asked LIVE to carry (`LiveOptions`: sites, depth). The hub hands
over one delta per group and flush (`LiveHub.listen`, one listener per group, never one per
monitor). It becomes one `Outgoing`, framed at most once per encoding, and is offered to the
group's monitors in slices of `FANOUT_SLICE`, with a turn of the event loop between slices so
that acks and check-ins go on meanwhile. A monitor that keeps
up takes the fast path (the shared frame straight into its socket); one that falls behind
queues, and past `MONITOR_QUEUE` messages skips to a fresh snapshot: a slow organizer is never
waited on.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from streamsvc.domain.live import ALL, LiveOptions
from streamsvc.services.live import LiveHub
from streamsvc.web.wsframes import Outgoing

__all__ = ["FANOUT_SLICE", "MONITOR_QUEUE", "Fanout", "Monitor", "SocketWriter", "deliver"]

#: Messages a monitor may have waiting before it is skipped to a fresh snapshot.
MONITOR_QUEUE = 8
#: Monitors written to between two turns of the event loop while a delta fans out.
FANOUT_SLICE = 25
#: A monitor whose socket holds more unsent bytes than this gets deltas through its queue.
FAST_PATH_BUFFER = 256 * 1024
#: How often a monitor that is behind looks whether its socket has room again.
DRAIN_POLL = 0.02

_SNAPSHOT = b""  # queue marker: send a fresh snapshot instead of what was queued


class Monitor:
    """One watching connection: a bounded queue drained by its own sender (`run`).

    A monitor that is keeping up takes the fast path instead: `write_now` hands the delta,
    already framed once for all monitors, straight to its socket, with no task switch and no
    framing per monitor (with 1,000 monitors the per-monitor path cost a third of the loop).
    Until `run` has sent the first snapshot, deltas queue behind it.
    """

    __slots__ = ("queue", "sending", "skipped", "snapshot_pending", "snapshots", "write_now")

    def __init__(self, write_now: Callable[[Outgoing], bool] | None = None) -> None:
        self.write_now = write_now
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(MONITOR_QUEUE)
        self.sending = True  # the sender is writing; later messages must queue behind
        self.snapshot_pending = False  # a fresh snapshot is queued: deltas until then are in it
        self.skipped = 0  # times it fell behind: queue dropped, skipped to a snapshot
        self.snapshots = 0  # fresh snapshots asked for: its resyncs and its skips

    def offer(self, data: bytes, delta: Outgoing | None = None) -> None:
        """Send or queue a message; when the queue is full the monitor is behind: drop what is
        queued and have it resynchronised from a fresh snapshot. A delta comes as `delta`
        too (`data` with its frames, shared by all monitors), for the fast path."""
        if delta is not None and self.snapshot_pending:
            return  # the snapshot about to be sent is newer than this delta
        if (
            delta is not None
            and self.write_now is not None
            and not self.sending
            and self.queue.empty()
            and self.write_now(delta)
        ):
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.skipped += 1
            self.request_snapshot()

    def request_snapshot(self) -> None:
        """Drop what is queued and send a fresh snapshot next (a resync, or falling behind)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_SNAPSHOT)
        self.snapshot_pending = True
        self.snapshots += 1

    async def run(
        self,
        first: bytes,
        send: Callable[[bytes], Awaitable[None]],
        snapshot: Callable[[], bytes],
    ) -> None:
        """The sender: `first` (the snapshot from `Fanout.subscribe`), then what is queued,
        a message from `snapshot()` where a fresh snapshot was asked for."""
        await send(first)
        self.sending = False
        while True:
            data = await self.queue.get()
            self.sending = True
            if data == _SNAPSHOT:
                self.snapshot_pending = False
                data = snapshot()
            await send(data)
            self.sending = False


class Fanout:
    """The monitors of each (session, scope, options) watched on this instance; the hub's
    listener for each."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self._monitors: dict[tuple[int, str | None, LiveOptions], set[Monitor]] = {}
        # the counts of monitors gone, so that `counts` covers this instance's whole life
        self._gone_skipped = 0
        self._gone_snapshots = 0

    async def subscribe(
        self,
        session_id: int,
        monitor: Monitor,
        scope: str | None = None,
        options: LiveOptions = ALL,
    ) -> bytes:
        """Add a monitor of the subtree of `scope` (None: the whole tree) with `options`;
        returns the snapshot to send it first, which the next delta it is offered follows
        (`NotFound` for an unknown session)."""
        await self.hub.watch(session_id)
        # nothing awaited from here on: no delta can fall between the snapshot and the set
        key = (session_id, scope, options)
        monitors = self._monitors.get(key)
        if monitors is None:
            monitors = self._monitors[key] = set()
            self.hub.listen(session_id, functools.partial(deliver, monitors), scope, options)
        monitors.add(monitor)
        return self.hub.snapshot_message(session_id, scope, options)

    def unsubscribe(
        self,
        session_id: int,
        monitor: Monitor,
        scope: str | None = None,
        options: LiveOptions = ALL,
    ) -> None:
        key = (session_id, scope, options)
        monitors = self._monitors.get(key)
        if monitors is None:
            return
        if monitor in monitors:
            monitors.discard(monitor)
            self._gone_skipped += monitor.skipped
            self._gone_snapshots += monitor.snapshots
        if not monitors:
            del self._monitors[key]
            self.hub.listen(session_id, None, scope, options)

    def counts(self) -> tuple[int, int, int]:
        """(monitors connected, times a monitor fell behind and skipped to a snapshot, fresh
        snapshots sent on a monitor's resync) on this instance, read when `/metrics` is
        scraped rather than counted per delta."""
        connected, skipped, snapshots = 0, self._gone_skipped, self._gone_snapshots
        for monitors in self._monitors.values():
            connected += len(monitors)
            for monitor in monitors:
                skipped += monitor.skipped
                snapshots += monitor.snapshots
        return connected, skipped, snapshots - skipped

    def snapshot(
        self, session_id: int, scope: str | None = None, options: LiveOptions = ALL
    ) -> bytes:
        """A fresh snapshot message for a monitor that resynchronises."""
        return self.hub.snapshot_message(session_id, scope, options)


async def deliver(monitors: set[Monitor], data: bytes) -> None:
    """Offer one delta to every monitor of its group, framed once for all of them."""
    outgoing = Outgoing(data)
    for i, monitor in enumerate(tuple(monitors), 1):
        monitor.offer(data, outgoing)
        if i % FANOUT_SLICE == 0:
            await asyncio.sleep(0)  # let acks and check-ins through meanwhile


class SocketWriter:
    """Writes our own frames to one monitor's connection.

    Every data frame after the hello is built by `wsframes` (compressed once per delta for
    all monitors when the client negotiated permessage-deflate), never by aiohttp: once a
    frame of ours is on the connection, aiohttp's compressor, which carries context over from
    one message to the next, must not be used.
    """

    __slots__ = ("_transport", "_window_bits", "_ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
        negotiated = ws.compress
        self._ws = ws
        self._transport = transport
        self._window_bits = negotiated if type(negotiated) is int else 0

    def _writable(self) -> bool:
        transport = self._transport
        return transport is not None and not transport.is_closing() and not self._ws.closed

    def write_now(self, message: Outgoing) -> bool:
        """Write a delta's shared frame at once if the socket keeps up; False: queue it."""
        transport = self._transport  # inlined checks: this runs per monitor and delta
        if (
            transport is None
            or transport.is_closing()
            or self._ws.closed
            or transport.get_write_buffer_size() > FAST_PATH_BUFFER
        ):
            return False
        transport.write(message.frame(self._window_bits))
        return True

    async def send(self, data: bytes) -> None:
        """The queued path (snapshots, errors, deltas behind them): wait for room, then write."""
        frame = Outgoing(data).frame(self._window_bits)
        transport = self._transport
        while self._writable() and transport is not None:
            if transport.get_write_buffer_size() <= FAST_PATH_BUFFER:
                transport.write(frame)
                return
            await asyncio.sleep(DRAIN_POLL)
        raise ConnectionResetError("the monitor went away")
