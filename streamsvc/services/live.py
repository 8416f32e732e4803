"""The live-count hub: one `LiveState` per watched session, fed by commits and the bus.

- Every committed event is applied at once to the session's state (if loaded) and queued for
  the bus; the ack never waits for the bus, so losing Redis never slows check-ins.
- A session's state is built from the store the first time someone watches it, so a restart
  shows the same numbers; `LiveState.apply` is idempotent, so events applied while the build
  runs, or coming back over the bus, count once.
- At most every `FLUSH_INTERVAL`, the changes of each watched session are taken once, and
  each (session, scope) that has a listener gets one delta from them, serialised once: the
  listener (the web fan-out) hands the same bytes to all of that scope's monitors. A scope is
  the root unit of a subtree (None: the whole tree); its delta is read from the state's
  counters (`LiveState.view`), so a check-in costs nothing per scope or per monitor. The
  group's key also holds the monitors' options (`LiveOptions`: every site or none, units down
  to a depth), read from the same counters: a dashboard at 31,000 sites gets small deltas
  without a second mechanism.
- An unexpected member's unit, which the scoped views need and a check-in does not carry, is
  read from the store at the next flush (`LiveState.take_unplaced`), off the check-in path.
- Coordinator connections are counted per instance in a `ConnectionRegistry` and shared on the
  bus with a heartbeat, so a crashed instance's sites drop to "not connected" after
  `CONN_EXPIRY` seconds.
- What goes on the bus, and how, is `streamsvc.bus.codec`'s: the hub sends and receives its
  typed messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from streamsvc.bus import codec
from streamsvc.domain.connections import ConnectionRegistry
from streamsvc.domain.live import ALL, LiveOptions, LiveState, LiveView, SiteQuery
from streamsvc.domain.models import Event, Site
from streamsvc.errors import NotFound, StreamsvcError
from streamsvc.ports import Bus, Store
from streamsvc.services.metrics import Buckets, BusStats

__all__ = ["FLUSH_INTERVAL", "HEARTBEAT", "DeltaListener", "GroupKey", "LiveHub"]

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.25  # the contract: at most four deltas a second
#: Seconds between two full reports of this instance's connections to the others.
HEARTBEAT = 5.0

#: Takes a (session, scope)'s delta message (`{"type": "delta", "seq", ...}` as JSON bytes),
#: once per delta whatever the number of monitors; the hub waits for it before the next one.
DeltaListener = Callable[[bytes], Awaitable[None]]
#: What monitors of one session share a delta by: the scope's root unit (None: the whole
#: tree) and the options they asked for.
GroupKey = tuple[str | None, LiveOptions]


class _Group:
    """The monitors of one scope and options of a session, as the hub sees them: one view,
    one numbering of deltas, one listener."""

    __slots__ = ("listener", "seq", "view")

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self.seq = 0
        self.listener: DeltaListener | None = None


class _Watched:
    __slots__ = ("groups", "ready", "site_ids", "site_views", "state")

    def __init__(self, state: LiveState, site_ids: set[int]) -> None:
        self.state = state
        self.site_ids = site_ids
        # (scope root, options) -> its group, while it has a listener
        self.groups: dict[GroupKey, _Group] = {}
        # scope root -> the view its per-site table pages are read from (one per scope asked
        # about, kept: it remembers which sites lie in the scope)
        self.site_views: dict[str | None, LiveView] = {}
        self.ready = asyncio.Event()


class LiveHub:
    def __init__(self, store: Store, bus: Bus, *, instance: str | None = None) -> None:
        self.store = store
        self.bus = bus
        self.instance = instance or uuid.uuid4().hex[:12]
        self._sessions: dict[int, _Watched] = {}
        self._loading: dict[int, asyncio.Task[_Watched]] = {}
        self._outbox: deque[codec.Message] = deque()
        self._outbox_ready = asyncio.Event()
        self._dirty = asyncio.Event()
        self._connections = ConnectionRegistry()
        self._missed = False
        self._refreshing: set[int] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.flushes = 0
        self.bus_stats = BusStats()

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

    def connection_counts(self) -> tuple[int, int]:
        """(sites with a coordinator connected here, coordinator connections here), for
        `/metrics`: read when scraped, not kept per connection."""
        counts = self._connections.local_counts()
        return len(counts), sum(n for _site, _session, n in counts)

    def bus_backlog(self) -> int:
        """Messages waiting to be published on the bus."""
        return len(self._outbox)

    # -- loading ----------------------------------------------------------------------------

    async def watch(self, session_id: int) -> None:
        """Have the session's live state ready (built from the store on first use);
        `NotFound` if there is no such session."""
        await self._watched(session_id)

    async def _watched(self, session_id: int) -> _Watched:
        """The session's live state, built once however many ask at the same time."""
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
        # one str per unit, not per member: 2,000,000 rows name ~20,000 cells
        unit_codes: dict[str, str] = {}
        expected = {
            m.code: unit_codes.setdefault(m.unit, m.unit)
            async for m in self.store.iter_expected_members(session_id)
        }
        del unit_codes
        sites = await self.store.list_sites(session_id)
        entry = _Watched(LiveState(session, units, expected, sites), {s.id for s in sites})
        for site in sites:
            self._connections.place(site.id, session_id)
        # from here on commits and the bus apply to this state directly; the scan below
        # may see some of them again, which apply ignores
        self._sessions[session_id] = entry
        await self._scan(entry, session_id)
        await self._place(entry, entry.state.take_unplaced())
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
                self._connections.place(site.id, session_id)
                entry.state.add_site(site)
        self._refresh_connections(entry)
        self._dirty.set()

    # -- what the service tells the hub ------------------------------------------------------

    def on_committed(self, events: Sequence[Event]) -> None:
        """Called by the group committer right after a commit: apply, then queue for the bus
        (encoded later by the publisher, off the commit path)."""
        self._apply(events)
        self._send(codec.EventsCommitted(self.instance, events))

    def site_added(self, site: Site) -> None:
        entry = self._sessions.get(site.session_id)
        self._connections.place(site.id, site.session_id)
        if entry is not None:
            entry.site_ids.add(site.id)
            entry.state.add_site(site)
            self._dirty.set()
        self._send(codec.SiteRegistered(self.instance, site.session_id))

    def sites_added(self, sites: Sequence[Site]) -> None:
        """Many sites registered at once: shown here, and one bus message per session."""
        for session_id in dict.fromkeys(site.session_id for site in sites):
            entry = self._sessions.get(session_id)
            for site in sites:
                if site.session_id != session_id:
                    continue
                self._connections.place(site.id, session_id)
                if entry is not None:
                    entry.site_ids.add(site.id)
                    entry.state.add_site(site)
            if entry is not None:
                self._dirty.set()
            self._send(codec.SiteRegistered(self.instance, session_id))

    async def site_connected(self, site: Site, change: int) -> None:
        """A coordinator connected (+1) or went away (-1) at the site, on this instance."""
        count = self._connections.connect(site.id, site.session_id, change)
        self._set_site_connections(site.id)
        self._send(codec.Connections(self.instance, [(site.id, site.session_id, count)]))

    async def site_presence(
        self, site: Site, among: Iterable[str]
    ) -> tuple[set[str], set[str], int | None]:
        """Which of `among` are checked in at the site's session, who is at the site, and its
        guests, from the live state rather than by reading every event again."""
        return (await self._watched(site.session_id)).state.site_presence(site.id, among)

    async def snapshot(
        self, session_id: int, scope: str | None = None, options: LiveOptions = ALL
    ) -> dict[str, Any]:
        """LIVE of the session, restricted to the subtree of `scope` (None: the whole tree)."""
        return (await self._watched(session_id)).state.view(scope, options).snapshot()

    async def sites(
        self, session_id: int, scope: str | None, query: SiteQuery
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the session's sites in the subtree of `scope` and how many match, read
        from the live state (no database read per request)."""
        entry = await self._watched(session_id)
        view = entry.site_views.get(scope)
        if view is None:
            view = entry.site_views[scope] = entry.state.view(scope)
        return view.sites_page(query)

    def snapshot_message(
        self, session_id: int, scope: str | None = None, options: LiveOptions = ALL
    ) -> bytes:
        """A watched session's `{"type": "snapshot", "seq", "live"}` message for a scope and
        options, numbered after the last delta handed to that group's listener, so that the
        next delta follows it."""
        entry = self._ready(session_id)
        group = entry.groups.get((scope, options))
        if group is None:
            seq, view = 0, entry.state.view(scope, options)
        else:
            seq, view = group.seq, group.view
        return orjson.dumps({"type": "snapshot", "seq": seq, "live": view.snapshot()})

    def listen(
        self,
        session_id: int,
        listener: DeltaListener | None,
        scope: str | None = None,
        options: LiveOptions = ALL,
    ) -> None:
        """Give a watched session's deltas for a scope and options to `listener` (one per
        group; None: nobody watches that group, and its changes only wait for the next
        snapshot)."""
        entry = self._ready(session_id)
        key = (scope, options)
        if listener is None:
            entry.groups.pop(key, None)
            return
        group = entry.groups.get(key)
        if group is None:
            group = entry.groups[key] = _Group(entry.state.view(scope, options))
        group.listener = listener

    def _ready(self, session_id: int) -> _Watched:
        entry = self._sessions.get(session_id)
        if entry is None or not entry.ready.is_set():
            raise NotFound(f"session {session_id} is not watched")
        return entry

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

    def _send(self, message: codec.Message) -> None:
        if not self.bus.shared:
            return
        self._outbox.append(message)
        self._outbox_ready.set()

    def _set_site_connections(self, site_id: int) -> None:
        session_id = self._connections.session_of(site_id)
        entry = self._sessions.get(session_id) if session_id is not None else None
        if entry is not None:
            entry.state.set_connections(site_id, self._connections.total(site_id))
            self._dirty.set()

    def _refresh_connections(self, entry: _Watched) -> None:
        total = self._connections.total
        for site_id in entry.site_ids:
            entry.state.set_connections(site_id, total(site_id))

    async def _on_bus(self, data: bytes) -> None:
        try:
            message = codec.decode(data, skip_origin=self.instance)
        except codec.MalformedMessage as exc:
            logger.warning("ignoring a malformed bus message (%s): %r", exc, data[:200])
            return
        if message is None:
            return  # our own, back from Redis
        self.bus_stats.received += 1
        match message:
            case codec.EventsCommitted(_, events):
                self._apply(events)
                self._lag(self.bus_stats.apply_lag, events)
            case codec.Connections(origin, counts, full):
                now = time.monotonic()
                for site_id in self._connections.heard(origin, counts, full=full, now=now):
                    self._set_site_connections(site_id)
            case codec.SiteRegistered(_, session_id):
                entry = self._sessions.get(session_id)
                if entry is not None:
                    await self._refresh_sites(entry, session_id)
            case codec.RescanRequest():
                await self._catch_up()

    async def _on_bus_back(self) -> None:
        """Redis is back: read what we may have missed from the store, and have the other
        instances do the same for what they missed of ours."""
        self._send(codec.RescanRequest(self.instance))
        await self._catch_up()

    async def _catch_up(self) -> None:
        for session_id, entry in list(self._sessions.items()):
            if entry.ready.is_set():
                await self._scan(entry, session_id)
        self._dirty.set()

    async def _flusher(self) -> None:
        """Hand each watched session's deltas to its listeners, one per scope watched, at
        most every FLUSH_INTERVAL."""
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = loop.time()
            for session_id, entry in list(self._sessions.items()):
                if not entry.ready.is_set():
                    continue
                state = entry.state
                unplaced = state.take_unplaced()
                if unplaced:
                    self._spawn(self._place(entry, unplaced))
                changes = state.take_changes()
                if changes is None:
                    continue
                for key, group in list(entry.groups.items()):
                    listener = group.listener
                    delta = group.view.delta(changes)
                    if delta is None or listener is None:
                        continue
                    group.seq += 1
                    try:
                        await listener(orjson.dumps({"type": "delta", "seq": group.seq, **delta}))
                    except Exception:
                        # one scope's fan-out failing must not stop every session's counts
                        logger.exception("live fan-out of session %s %s failed", session_id, key)
            self.flushes += 1
            # A steady cadence: the time the fan-out took counts towards the interval.
            await asyncio.sleep(max(0.0, FLUSH_INTERVAL - (loop.time() - started)))

    async def _place(self, entry: _Watched, members: list[str]) -> None:
        """Tell the state the units of unexpected members, for the scoped views."""
        if not members:
            return
        try:
            found = await self.store.get_members(members)
        except Exception:
            # a background lookup: the next flush asks again
            logger.exception("reading the units of %d unexpected members failed", len(members))
            entry.state.retry_unplaced(members)
            return
        entry.state.place_members({code: member.unit for code, member in found.items()})
        self._dirty.set()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publisher(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                message = self._outbox.popleft()
                try:
                    await self.bus.publish(codec.encode(message))
                except StreamsvcError:
                    # the store has every event; the others catch up when the bus is back
                    self._missed = True
                    self.bus_stats.publish_failures += 1
                    self.bus_stats.dropped += 1 + len(self._outbox)
                    self._outbox.clear()
                    break
                self.bus_stats.published += 1
                if isinstance(message, codec.EventsCommitted):
                    self._lag(self.bus_stats.publish_lag, message.events)

    @staticmethod
    def _lag(buckets: Buckets, events: Sequence[Event]) -> None:
        """Seconds since the group commit that stored `events` began (one look per message)."""
        if events:
            buckets.observe((datetime.now(UTC) - events[0].received_at).total_seconds())

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            counts = self._connections.local_counts()
            self._send(codec.Connections(self.instance, counts, full=True))
            for site_id in self._connections.expire(time.monotonic()):
                self._set_site_connections(site_id)
