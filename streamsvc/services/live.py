"""The live-count hub: one `LiveState` per watched session, fed by commits and the bus.

- Every committed event is applied at once to the session's state (if loaded) and queued for
  the bus; the ack never waits for the bus, so losing Redis never slows check-ins.
- A session's state is built from the store the first time someone watches it, so a restart
  shows the same numbers; `LiveState.apply` is idempotent, so events applied while the build
  runs, or coming back over the bus, count once.
- Deltas go out at most four times a second, serialised once per session and offered to every
  monitor's bounded queue; a monitor that falls behind skips to a fresh snapshot.
- Coordinator connections are counted per instance and shared on the bus with a heartbeat, so a
  crashed instance's sites drop to "not connected" after `CONN_EXPIRY` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from streamsvc.domain.live import LiveState
from streamsvc.domain.models import Event, Site
from streamsvc.errors import NotFound, StreamsvcError
from streamsvc.ports import Bus, Store
from streamsvc.wsframes import Outgoing

__all__ = ["FLUSH_INTERVAL", "LiveHub", "Monitor"]

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.25  # the contract: at most four deltas a second
MONITOR_QUEUE = 8
HEARTBEAT = 5.0
CONN_EXPIRY = 15.0
_SNAPSHOT = b""  # queue marker: send a fresh snapshot instead of what was queued
#: Monitors written to between two turns of the event loop while a delta fans out.
FANOUT_SLICE = 25


class Monitor:
    """One watching connection: a bounded queue drained by its own sender task.

    A monitor that is keeping up takes the fast path instead: `write_now` hands the delta,
    already framed once for all monitors, straight to its socket, with no task switch and no
    framing per monitor (with 1,000 monitors the per-monitor path cost a third of the loop).
    """

    def __init__(self, write_now: Callable[[Outgoing], bool] | None = None) -> None:
        self.write_now = write_now
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(MONITOR_QUEUE)
        self.sending = False  # the sender task is writing; later messages must queue behind
        self.snapshot_pending = False  # a fresh snapshot is queued: deltas until then are in it
        self.skipped = 0

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
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_SNAPSHOT)
        self.snapshot_pending = True


class _Watched:
    __slots__ = ("monitors", "ready", "seq", "site_ids", "state")

    def __init__(self, state: LiveState, site_ids: set[int]) -> None:
        self.state = state
        self.site_ids = site_ids
        self.seq = 0
        self.monitors: set[Monitor] = set()
        self.ready = asyncio.Event()


class LiveHub:
    def __init__(self, store: Store, bus: Bus, *, instance: str | None = None) -> None:
        self.store = store
        self.bus = bus
        self.instance = instance or uuid.uuid4().hex[:12]
        self._sessions: dict[int, _Watched] = {}
        self._loading: dict[int, asyncio.Task[_Watched]] = {}
        self._outbox: deque[dict[str, Any]] = deque()
        self._outbox_ready = asyncio.Event()
        self._dirty = asyncio.Event()
        self._local_conn: dict[int, int] = {}
        self._site_session: dict[int, int] = {}
        # other instances' connection counts: instance -> (last heard, {site: count})
        self._remote_conn: dict[str, tuple[float, dict[int, int]]] = {}
        self._missed = False
        self._refreshing: set[int] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.flushes = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self._on_bus, self._on_bus_back)
        self._tasks = [
            asyncio.create_task(self._flusher(), name="live-flush"),
            asyncio.create_task(self._publisher(), name="live-publish"),
            asyncio.create_task(self._heartbeat(), name="live-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._loading.values()]:
            task.cancel()
        for task in [*self._tasks, *self._loading.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bus.stop()

    async def bus_health(self) -> str:
        if self.bus.name == "memory":
            return "disabled"
        try:
            await self.bus.ping()
        except StreamsvcError as exc:
            return f"failing: {exc.message}"
        return self.bus.health()

    # -- loading ----------------------------------------------------------------------------

    async def watched(self, session_id: int) -> _Watched:
        """The session's live state, built from the store on first use (once, however many
        ask at the same time)."""
        entry = self._sessions.get(session_id)
        if entry is not None and entry.ready.is_set():
            return entry
        task = self._loading.get(session_id)
        if task is None:
            task = asyncio.create_task(self._load(session_id), name=f"live-load-{session_id}")
            self._loading[session_id] = task
            task.add_done_callback(lambda _t: self._loading.pop(session_id, None))
        return await asyncio.shield(task)

    async def _load(self, session_id: int) -> _Watched:
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFound(f"session {session_id} does not exist")
        units = {u.code: u for u in await self.store.list_units()}
        expected = {m.code: m.unit async for m in self.store.iter_expected_members(session_id)}
        sites = await self.store.list_sites(session_id)
        entry = _Watched(LiveState(session, units, expected, sites), {s.id for s in sites})
        for site in sites:
            self._site_session[site.id] = session_id
        # from here on commits and the bus apply to this state directly; the scan below
        # may see some of them again, which apply ignores
        self._sessions[session_id] = entry
        await self._scan(entry, session_id)
        self._refresh_connections(entry)
        entry.state.take_delta()
        entry.ready.set()
        return entry

    async def _scan(self, entry: _Watched, session_id: int) -> None:
        apply = entry.state.apply
        unknown: set[int] = set()
        async for event in self.store.iter_events(session_id):
            apply(event)
            if event.site_id not in entry.site_ids:
                unknown.add(event.site_id)
        if unknown:
            await self._refresh_sites(entry, session_id)

    async def _refresh_sites(self, entry: _Watched, session_id: int) -> None:
        self._refreshing.discard(session_id)
        for site in await self.store.list_sites(session_id):
            if site.id not in entry.site_ids:
                entry.site_ids.add(site.id)
                self._site_session[site.id] = session_id
                entry.state.add_site(site)
        self._refresh_connections(entry)
        self._dirty.set()

    # -- what the service tells the hub ------------------------------------------------------

    def on_committed(self, events: Sequence[Event]) -> None:
        """Called by the group committer right after a commit: apply, then queue for the bus."""
        self._apply(events)
        if self.bus.shared:
            self._send({"k": "ev", "o": self.instance, "e": [_wire(e) for e in events]})

    def site_added(self, site: Site) -> None:
        entry = self._sessions.get(site.session_id)
        self._site_session[site.id] = site.session_id
        if entry is not None:
            entry.site_ids.add(site.id)
            entry.state.add_site(site)
            self._dirty.set()
        self._send({"k": "site", "o": self.instance, "s": site.session_id})

    async def site_connected(self, site: Site, change: int) -> None:
        count = max(self._local_conn.get(site.id, 0) + change, 0)
        if count:
            self._local_conn[site.id] = count
        else:
            self._local_conn.pop(site.id, None)
        self._site_session[site.id] = site.session_id
        self._set_site_connections(site.id)
        self._send({"k": "conn", "o": self.instance, "c": [[site.id, site.session_id, count]]})

    async def site_presence(self, site: Site) -> tuple[set[str], set[str], int | None]:
        """Who is checked in at the site's session and at the site, and its guests, from the
        live state rather than by reading every event of the session again."""
        return (await self.watched(site.session_id)).state.site_presence(site.id)

    async def snapshot(self, session_id: int) -> dict[str, Any]:
        return (await self.watched(session_id)).state.snapshot()

    async def subscribe(self, session_id: int, monitor: Monitor) -> tuple[int, bytes]:
        """Register a monitor; returns (seq, snapshot message) to send it first."""
        entry = await self.watched(session_id)
        entry.monitors.add(monitor)
        return entry.seq, self.snapshot_message(entry)

    def unsubscribe(self, session_id: int, monitor: Monitor) -> None:
        entry = self._sessions.get(session_id)
        if entry is not None:
            entry.monitors.discard(monitor)

    def snapshot_message(self, entry: _Watched) -> bytes:
        return orjson.dumps({"type": "snapshot", "seq": entry.seq, "live": entry.state.snapshot()})

    def entry(self, session_id: int) -> _Watched | None:
        return self._sessions.get(session_id)

    # -- internals ----------------------------------------------------------------------------

    def _apply(self, events: Sequence[Event]) -> None:
        sessions = self._sessions
        touched = False
        for event in events:
            entry = sessions.get(event.session_id)
            if entry is None:
                continue
            entry.state.apply(event)
            touched = True
            if event.site_id not in entry.site_ids and event.session_id not in self._refreshing:
                # a site registered on another instance: shown once its registration is read
                self._refreshing.add(event.session_id)
                task = asyncio.create_task(self._refresh_sites(entry, event.session_id))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        if touched:
            self._dirty.set()

    def _send(self, message: dict[str, Any]) -> None:
        if not self.bus.shared:
            return
        self._outbox.append(message)
        self._outbox_ready.set()

    def _connections(self, site_id: int) -> int:
        total = self._local_conn.get(site_id, 0)
        for _, counts in self._remote_conn.values():
            total += counts.get(site_id, 0)
        return total

    def _set_site_connections(self, site_id: int) -> None:
        session_id = self._site_session.get(site_id)
        entry = self._sessions.get(session_id) if session_id is not None else None
        if entry is not None:
            entry.state.set_connections(site_id, self._connections(site_id))
            self._dirty.set()

    def _refresh_connections(self, entry: _Watched) -> None:
        for site_id in entry.site_ids:
            entry.state.set_connections(site_id, self._connections(site_id))

    async def _on_bus(self, message: dict[str, Any]) -> None:
        origin = message.get("o")
        if origin == self.instance:
            return
        kind = message.get("k")
        try:
            if kind == "ev":
                self._apply([_unwire(w) for w in message["e"]])
            elif kind == "conn":
                _heard, counts = self._remote_conn.get(origin, (0.0, {}))
                if message.get("full"):
                    old, counts = counts, {}
                else:
                    old = {}
                for site_id, session_id, count in message["c"]:
                    self._site_session.setdefault(site_id, session_id)
                    if count:
                        counts[site_id] = count
                    else:
                        counts.pop(site_id, None)
                self._remote_conn[origin] = (time.monotonic(), counts)
                for site_id in {*old, *(c[0] for c in message["c"])}:
                    self._set_site_connections(site_id)
            elif kind == "site":
                entry = self._sessions.get(message["s"])
                if entry is not None:
                    await self._refresh_sites(entry, message["s"])
            elif kind == "rescan":
                await self._catch_up()
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("ignoring a malformed bus message (%s): %r", exc, message)

    async def _on_bus_back(self) -> None:
        """Redis is back: read what we may have missed from the store, and have the other
        instances do the same for what they missed of ours."""
        self._send({"k": "rescan", "o": self.instance})
        await self._catch_up()

    async def _catch_up(self) -> None:
        for session_id, entry in list(self._sessions.items()):
            if entry.ready.is_set():
                await self._scan(entry, session_id)
        self._dirty.set()

    async def _flusher(self) -> None:
        """Send each watched session's delta, at most every FLUSH_INTERVAL seconds."""
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = loop.time()
            for entry in list(self._sessions.values()):
                if not entry.ready.is_set():
                    continue
                delta = entry.state.take_delta()
                if delta is None or not entry.monitors:
                    continue
                entry.seq += 1
                data = orjson.dumps({"type": "delta", "seq": entry.seq, **delta})
                outgoing = Outgoing(data)
                for i, monitor in enumerate(list(entry.monitors), 1):
                    monitor.offer(data, outgoing)
                    if i % FANOUT_SLICE == 0:
                        await asyncio.sleep(0)  # let acks and check-ins through meanwhile
            self.flushes += 1
            # A steady cadence: the time the fan-out took counts towards the interval.
            await asyncio.sleep(max(0.0, FLUSH_INTERVAL - (loop.time() - started)))

    async def _publisher(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                message = self._outbox.popleft()
                try:
                    await self.bus.publish(message)
                except StreamsvcError:
                    # the store has every event; the others catch up when the bus is back
                    self._missed = True
                    self._outbox.clear()
                    break

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            counts = [[s, self._site_session.get(s, 0), n] for s, n in self._local_conn.items()]
            self._send({"k": "conn", "o": self.instance, "full": True, "c": counts})
            now = time.monotonic()
            for origin, (heard, remote) in list(self._remote_conn.items()):
                if now - heard > CONN_EXPIRY:
                    del self._remote_conn[origin]
                    for site_id in remote:
                        self._set_site_connections(site_id)


def _us(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return int(moment.timestamp() * 1_000_000)


def _dt(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def _wire(e: Event) -> list[Any]:
    return [
        e.id,
        e.session_id,
        e.site_id,
        e.type,
        _us(e.ts),
        _us(e.received_at),
        e.member,
        e.count,
        e.target,
        e.voided,
        e.late_upload,
    ]


def _unwire(w: list[Any]) -> Event:
    received = _dt(w[5])
    assert received is not None
    return Event(w[0], w[1], w[2], w[3], _dt(w[4]), received, w[6], w[7], w[8], w[9], w[10])
