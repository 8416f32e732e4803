"""`GET /metrics`: Prometheus text, no token (bind it to a private address in production).

Nothing here runs per check-in or per delta. The services keep plain integers
(`services.metrics`), the hub and the fan-out know their connections, the PostgreSQL pool its
connections; one collector reads them all when Prometheus scrapes, into a registry of this
app's own (tests run several apps in one process). Labels are outcomes and reasons, never a
site or a member.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from streamsvc import __version__
from streamsvc.services.metrics import Buckets
from streamsvc.web import keys

__all__ = ["OUTCOMES", "AppCollector", "metrics", "registry_key", "setup"]

registry_key = web.AppKey("metrics_registry", CollectorRegistry)

#: Every (result, reason) the contract names, shown from the start (at 0) so that a rate
#: over them is defined before the first one happens.
OUTCOMES = (
    ("accepted", ""),
    ("duplicate", ""),
    ("rejected", "unknown_member"),
    ("rejected", "invalid"),
    ("rejected", "session_closed"),
    ("rejected", "ts_out_of_window"),
    ("rejected", "unknown_target"),
)


@runtime_checkable
class PooledStore(Protocol):
    """A store with a connection pool (PostgreSQL); SQLite has one writer thread instead."""

    def pool_use(self) -> tuple[int, int, int]: ...


def _histogram(name: str, doc: str, buckets: Buckets) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], buckets.cumulative(), buckets.sum)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class AppCollector(Collector):
    """Reads one app's services when scraped; before they start it yields only what it has."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        settings = app[keys.settings_key]
        info = GaugeMetricFamily(
            "streamsvc_info",
            "This instance: version, store and bus.",
            labels=["version", "store", "bus"],
        )
        info.add_metric(
            [
                __version__,
                settings.database.split(":", 1)[0],
                "redis" if settings.redis else "memory",
            ],
            1,
        )
        yield info
        yield _gauge(
            "streamsvc_websockets_open",
            "Websockets open on this instance (coordinators and monitors, before and after hello).",
            len(app[keys.sockets_key]),
        )
        if keys.committer_key in app:
            yield from self._checkins(app)
        if keys.live_key in app:
            yield from self._live(app)
        if keys.fanout_key in app:
            yield from self._monitors(app)
        store = app.get(keys.store_key)
        if isinstance(store, PooledStore):
            size, in_use, most = store.pool_use()
            yield _gauge("streamsvc_store_pool_size", "Database connections open.", size)
            yield _gauge("streamsvc_store_pool_in_use", "Database connections lent out.", in_use)
            yield _gauge("streamsvc_store_pool_max", "The most connections the pool opens.", most)

    def _checkins(self, app: web.Application) -> Iterator[Metric]:
        committer = app[keys.committer_key]
        stats = committer.stats
        outcomes = CounterMetricFamily(
            "streamsvc_checkin_events",
            "Check-in events answered, by result and (for rejected) reason.",
            labels=["result", "reason"],
        )
        counts = dict.fromkeys(OUTCOMES, 0)
        counts[("accepted", "")] = stats.accepted
        counts.update(stats.others)
        for (result, reason), n in sorted(counts.items()):
            outcomes.add_metric([result, reason], n)
        yield outcomes
        yield _counter(
            "streamsvc_checkin_bad_frames",
            "Websocket frames answered bad_message (not JSON, not a known message).",
            stats.bad_frames,
        )
        yield _histogram(
            "streamsvc_checkin_ack_seconds",
            "A check-in frame received to its ack written (websocket), in seconds.",
            stats.ack_seconds,
        )
        yield _histogram(
            "streamsvc_group_commit_events", "Events in one group commit.", stats.commit_size
        )
        yield _histogram(
            "streamsvc_group_commit_seconds",
            "One group commit's transaction (read facts, decide, insert, commit), in seconds.",
            stats.commit_seconds,
        )
        yield _counter(
            "streamsvc_group_commit_failures",
            "Group commits that failed (the store was unreachable): their frames got no ack.",
            stats.commit_failures,
        )
        if keys.admission_key in app:
            admission = app[keys.admission_key]
            yield _counter(
                "streamsvc_connections_refused",
                "Coordinator connections told 503 busy (admission: too many at once, or the "
                "group commits behind).",
                admission.refused,
            )
        yield _gauge(
            "streamsvc_group_commit_backlog",
            "Frames waiting for the next group commit.",
            committer.backlog(),
        )

    def _live(self, app: web.Application) -> Iterator[Metric]:
        hub = app[keys.live_key]
        sites, connections = hub.connection_counts()
        yield _gauge(
            "streamsvc_sites_connected",
            "Sites with at least one coordinator connected to this instance.",
            sites,
        )
        yield _gauge(
            "streamsvc_site_connections", "Coordinator websockets on this instance.", connections
        )
        yield _counter(
            "streamsvc_live_flushes", "Live delta rounds (at most 4 a second).", hub.flushes
        )
        bus = hub.bus_stats
        yield _counter("streamsvc_bus_published", "Messages published on the bus.", bus.published)
        yield _counter(
            "streamsvc_bus_publish_failures",
            "Publishes that failed (Redis unreachable); the others catch up from the store.",
            bus.publish_failures,
        )
        yield _counter(
            "streamsvc_bus_dropped",
            "Messages dropped unpublished while the bus failed (the store has their events).",
            bus.dropped,
        )
        yield _counter(
            "streamsvc_bus_received", "Messages from other instances applied here.", bus.received
        )
        yield _gauge(
            "streamsvc_bus_backlog", "Messages waiting to be published.", hub.bus_backlog()
        )
        yield _histogram(
            "streamsvc_bus_publish_lag_seconds",
            "An origin's group commit began to its events published on the bus, in seconds.",
            bus.publish_lag,
        )
        yield _histogram(
            "streamsvc_bus_apply_lag_seconds",
            "Another instance's group commit began to its events applied here, in seconds "
            "(includes the clock difference between the machines).",
            bus.apply_lag,
        )
        health = hub.bus.health()
        if health != "disabled":  # only a bus that can fail (Redis) has a health
            yield _gauge(
                "streamsvc_bus_up",
                "1 while the bus (Redis) answers, 0 while it is failing.",
                1 if health == "ok" else 0,
            )

    def _monitors(self, app: web.Application) -> Iterator[Metric]:
        connected, skipped, resyncs = app[keys.fanout_key].counts()
        yield _gauge(
            "streamsvc_monitors_connected", "Live monitors watching on this instance.", connected
        )
        yield _counter(
            "streamsvc_monitor_skips",
            "Times a monitor fell behind: its queue was dropped and it skipped to a snapshot.",
            skipped,
        )
        yield _counter(
            "streamsvc_monitor_resyncs",
            "Fresh snapshots sent because a monitor asked (it saw a gap in seq).",
            resyncs,
        )


def setup(app: web.Application) -> None:
    """Give the app its own registry (this app's figures and its process's) and `/metrics`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AppCollector(app))
    ProcessCollector(registry=registry)
    app[registry_key] = registry
    app.router.add_get("/metrics", metrics)


async def metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(
        body=encoder(request.app[registry_key]), headers={"Content-Type": content_type}
    )
