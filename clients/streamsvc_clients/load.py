"""`streamsvc-load`: N simulated sites checking M members in over real websockets.

It sets up (or reuses) a roster, a session starting now and N sites with their tokens through
the admin API, then drives one websocket per site: single events or batches per frame,
pipelined with a bounded window of unacked frames, at a steady total rate or as fast as the
server acks. Each site is the coordinator's own link (`streamsvc_clients.protocol`): it keeps
its unacked frames and, when its connection drops, reconnects with jittered exponential backoff
and sends them again, as a coordinator device does; so the same code serves the benchmark and
the crash tests (`prepare()`, then `Simulation(...).run()`).

Events are made and encoded before the clock starts, so the client spends its CPU on the
websocket, not on JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import math
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from streamsvc.cliparse import OneLineParser
from streamsvc_clients.protocol import (
    MAX_BATCH,
    Backoff,
    CheckinLink,
    Frame,
    Unauthorized,
    ws_url,
)

__all__ = [
    "Frame",
    "LoadConfig",
    "LoadError",
    "Prepared",
    "Report",
    "Simulation",
    "Stats",
    "main",
    "percentile",
    "prepare",
]

MEMBER_CHUNK = 20_000
SITE_CONCURRENCY = 16
HANDSHAKE_CONCURRENCY = 64
FIRST_CONNECT_ATTEMPTS = 8


class LoadError(Exception):
    """Setup failed in a way a person must fix (server down, token refused)."""


@dataclass(frozen=True)
class LoadConfig:
    url: str
    admin_token: str
    sites: int = 100
    members: int = 10_000
    units: int = 10
    events: int | None = None
    batch: int = 0
    window: int = 8
    rate: float | None = None
    connect_only: bool = False
    hold: float | None = None
    prefix: str = "LOAD"
    sites_file: Path | None = None
    record_ids: bool = False
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    timeout: float | None = None

    @property
    def total_events(self) -> int:
        return self.members if self.events is None else self.events

    @property
    def ws_url(self) -> str:
        return ws_url(self.url)


@dataclass(frozen=True)
class Prepared:
    """What the simulated sites need: the session, one token per site, the member codes."""

    session_id: int
    tokens: list[str]
    members: list[str]


@dataclass
class Stats:
    """Counters shared by all sites; `results` maps event id → result when ids are recorded."""

    total: int = 0
    sites: int = 0
    connected: int = 0
    acked_frames: int = 0
    acked: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    connect_failures: int = 0
    resent_frames: int = 0
    latencies: list[float] = field(default_factory=list)
    started: float | None = None
    last_ack: float | None = None
    connect_seconds: float | None = None
    results: dict[str, str] | None = None
    resent_ids: set[str] | None = None


def percentile(sorted_values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --- setup through the admin API -------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def member_codes(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-M{i:07d}" for i in range(count)]


class _Admin:
    def __init__(self, http: aiohttp.ClientSession, cfg: LoadConfig) -> None:
        self.http, self.cfg = http, cfg
        self.headers = {"Authorization": f"Bearer {cfg.admin_token}"}

    async def call(
        self, method: str, path: str, *, json_body: Any = None, data: Any = None, **kw: Any
    ) -> Any:
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "text/csv"
        try:
            async with self.http.request(
                method,
                self.cfg.url.rstrip("/") + path,
                json=json_body,
                data=data,
                headers=headers,
                **kw,
            ) as resp:
                body = await resp.read()
                if resp.status == 401:
                    raise LoadError("the server refused the admin token (401)")
                if resp.status >= 400:
                    text = body[:300].decode(errors="replace")
                    raise LoadError(f"{method} {path} answered {resp.status}: {text}")
                return orjson.loads(body) if body else None
        except aiohttp.ClientConnectionError as exc:
            raise LoadError(f"cannot reach the server at {self.cfg.url}: {exc}") from None


async def _ensure_roster(admin: _Admin, cfg: LoadConfig, log: Callable[[str], None]) -> list[str]:
    """Units `PREFIX` and `PREFIX-Unnn` below it, members `PREFIX-Mnnnnnnn`; imported if short."""
    codes = member_codes(cfg.prefix, cfg.members)
    units = [{"code": cfg.prefix, "name": f"{cfg.prefix} load test", "parent": None}]
    units += [
        {"code": f"{cfg.prefix}-U{u:03d}", "name": f"{cfg.prefix} unit {u}", "parent": cfg.prefix}
        for u in range(cfg.units)
    ]
    have_units = {u["code"] for u in (await admin.call("GET", "/api/v1/units"))["units"]}
    if not all(u["code"] in have_units for u in units):
        await admin.call("POST", "/api/v1/units", json_body={"units": units})
    found = await admin.call("GET", "/api/v1/members", params={"unit": cfg.prefix, "limit": "1"})
    if found["total"] >= cfg.members:
        return codes
    log(f"importing {cfg.members:,} members in {cfg.units} units")
    for start in range(0, cfg.members, MEMBER_CHUNK):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("code", "full_name", "unit"))
        for i in range(start, min(start + MEMBER_CHUNK, cfg.members)):
            writer.writerow((codes[i], f"Member {i}", f"{cfg.prefix}-U{i % cfg.units:03d}"))
        await admin.call("POST", "/api/v1/members", data=out.getvalue().encode())
    return codes


async def _reuse(admin: _Admin, cfg: LoadConfig, codes: list[str]) -> Prepared | None:
    path = cfg.sites_file
    if path is None or not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        if saved["url"] != cfg.url or saved["prefix"] != cfg.prefix:
            return None
        if len(saved["tokens"]) < cfg.sites or saved["members"] != cfg.members:
            return None
        session = await admin.call("GET", f"/api/v1/sessions/{int(saved['session'])}")
    except (LoadError, KeyError, TypeError, ValueError):
        return None
    if session.get("state") != "open":
        return None
    return Prepared(int(saved["session"]), list(saved["tokens"][: cfg.sites]), codes)


async def prepare(cfg: LoadConfig, log: Callable[[str], None] = lambda _: None) -> Prepared:
    """Roster, an open session starting now and `cfg.sites` sites (reused from the sites file)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        admin = _Admin(http, cfg)
        codes = await _ensure_roster(admin, cfg, log)
        reused = await _reuse(admin, cfg, codes)
        if reused is not None:
            log(f"reusing session {reused.session_id} and its sites from {cfg.sites_file}")
            return reused
        now = datetime.now(UTC)
        session = await admin.call(
            "POST",
            "/api/v1/sessions",
            json_body={
                "title": f"{cfg.prefix} load test {_iso(now)}",
                "starts_at": _iso(now),
                "ends_at": _iso(now + timedelta(hours=4)),
                "audience": [cfg.prefix],
            },
        )
        sid = int(session["id"])
        log(f"session {sid}: registering {cfg.sites:,} sites")
        tokens: list[str] = [""] * cfg.sites
        gate = asyncio.Semaphore(SITE_CONCURRENCY)

        async def add_site(i: int) -> None:
            async with gate:
                site = await admin.call(
                    "POST",
                    f"/api/v1/sessions/{sid}/sites",
                    json_body={"name": f"{cfg.prefix} site {i}", "kind": "hall"},
                )
                tokens[i] = site["token"]

        await asyncio.gather(*(add_site(i) for i in range(cfg.sites)))
    if cfg.sites_file is not None:
        cfg.sites_file.write_text(
            json.dumps(
                {
                    "url": cfg.url,
                    "prefix": cfg.prefix,
                    "members": cfg.members,
                    "session": sid,
                    "tokens": tokens,
                }
            )
        )
    return Prepared(sid, tokens, codes)


# --- the simulated sites ---------------------------------------------------------------------


def _frames_for(codes: Sequence[str], count: int, batch: int, ts: str) -> list[Frame]:
    """`count` check-ins of `codes` (cycled), one per frame or `batch` per frame."""
    events = []
    for i in range(count):
        events.append(
            {"type": "checkin", "id": str(uuid.uuid4()), "member": codes[i % len(codes)], "ts": ts}
        )
    if batch <= 0:
        return [Frame(orjson.dumps(e), [e["id"]]) for e in events]
    frames = []
    for start in range(0, count, batch):
        chunk = events[start : start + batch]
        frames.append(
            Frame(orjson.dumps({"type": "batch", "items": chunk}), [e["id"] for e in chunk])
        )
    return frames


class _GaveUp(Exception):
    """A site that never got in after `FIRST_CONNECT_ATTEMPTS` tries stops trying."""


class _Site(CheckinLink):
    """One simulated site: its frames, made up front, over the shared check-in link; the
    hooks only count, so the per-frame work stays that of the link's loops."""

    def __init__(self, sim: Simulation, index: int, token: str, frames: list[Frame]) -> None:
        cfg = sim.cfg
        super().__init__(
            cfg.ws_url,
            token,
            device=f"load-{index}",
            window=cfg.window,
            backoff=Backoff(cfg.backoff_initial, cfg.backoff_max),
            ping_interval=None,
            interval=sim.frame_interval(),
            start=sim.go,
            connect_gate=sim.handshakes,
        )
        self.sim, self.index, self.stats = sim, index, sim.stats
        self.frames = frames
        self.pending.extend(frames)
        self.finishing = not cfg.connect_only  # connect-only sites hold until stopped
        self.ready = False

    @property
    def unacked(self) -> int:
        return self.unacked_events

    def _signal_ready(self) -> None:
        if not self.ready:
            self.ready = True
            self.sim.site_ready()

    async def run(self) -> None:
        try:
            await super().run()
        except Unauthorized:
            self.stats.errors["unauthorized"] += 1
        except _GaveUp:
            pass
        finally:
            self._signal_ready()

    def welcomed(self, welcome: dict[str, Any]) -> None:
        self._signal_ready()

    def connection_changed(self, connected: bool) -> None:
        self.stats.connected += 1 if connected else -1

    def lost(self, established: bool, exc: BaseException) -> None:
        stats = self.stats
        if established:
            stats.disconnects += 1
            return
        stats.connect_failures += 1
        if not self.connections and self.backoff.attempts >= FIRST_CONNECT_ATTEMPTS:
            stats.errors[f"cannot connect: {type(exc).__name__}: {exc}"] += 1
            raise _GaveUp()

    def requeued(self, frames: Sequence[Frame]) -> None:
        stats = self.stats
        if stats.resent_ids is not None:
            for frame in frames:
                stats.resent_ids.update(frame.ids)
        stats.resent_frames += len(frames)

    def replied(self, at: float, frame: Frame, message: dict[str, Any]) -> None:
        stats = self.stats
        stats.latencies.append(at - frame.sent_at)
        stats.last_ack = at
        stats.acked_frames += 1
        on_ack = self.sim.on_ack
        if message.get("type") == "error":
            stats.errors[str(message.get("code"))] += len(frame.ids)
            if on_ack is not None:
                on_ack(at, frame, [])
            return
        got = message.get("results") or []
        if on_ack is not None:
            on_ack(at, frame, got)
        if len(got) != len(frame.ids):
            stats.errors["ack with the wrong number of results"] += 1
        stats.acked += len(got)
        results = stats.results
        for event_id, result in zip(frame.ids, got, strict=False):
            outcome = result.get("result")
            if outcome == "accepted":
                stats.accepted += 1
            elif outcome == "duplicate":
                stats.duplicate += 1
            else:
                stats.rejected += 1
                stats.reasons[str(result.get("reason"))] += 1
            if results is not None:
                results[event_id] = outcome


class Simulation:
    """N sites over websockets; `run()` returns when every event is acked or on stop/timeout."""

    def __init__(
        self,
        cfg: LoadConfig,
        prepared: Prepared,
        *,
        on_ack: Callable[[float, Frame, list[dict[str, Any]]], None] | None = None,
    ) -> None:
        """`on_ack(at, frame, results)`, if given, is called for every ack as it arrives, with
        `at` from `time.perf_counter()` (CLOCK_MONOTONIC on Linux: comparable across processes)
        and the ack's results; an error frame gives no results."""
        self.cfg = cfg
        self.on_ack = on_ack
        self.stats = Stats(total=0 if cfg.connect_only else cfg.total_events, sites=cfg.sites)
        if cfg.record_ids:
            self.stats.results, self.stats.resent_ids = {}, set()
        self.stop = asyncio.Event()
        self.go = asyncio.Event()
        self.all_connected = asyncio.Event()
        self.handshakes = asyncio.Semaphore(HANDSHAKE_CONCURRENCY)
        self._ready = 0
        ts = _iso(datetime.now(UTC))
        self.sites: list[_Site] = []
        n, total = cfg.sites, 0 if cfg.connect_only else cfg.total_events
        for i in range(n):
            share = total // n + (1 if i < total % n else 0)
            codes = prepared.members[i::n] or prepared.members
            frames = _frames_for(codes, share, cfg.batch, ts) if share else []
            self.sites.append(_Site(self, i, prepared.tokens[i], frames))

    def event_ids(self) -> list[str]:
        """Every event id this simulation sends (all made up front)."""
        return [i for site in self.sites for frame in site.frames for i in frame.ids]

    def frame_interval(self) -> float:
        """Seconds between two frames of one site at the configured total rate (0: no pacing)."""
        if not self.cfg.rate:
            return 0.0
        per_frame = max(1, self.cfg.batch)
        return per_frame * self.cfg.sites / self.cfg.rate

    def site_ready(self) -> None:
        self._ready += 1
        if self._ready >= len(self.sites) and not self.go.is_set():
            self.stats.connect_seconds = time.perf_counter() - self._t0
            self.stats.started = time.perf_counter()
            self.all_connected.set()
            self.go.set()

    @property
    def unacked(self) -> int:
        return sum(site.unacked for site in self.sites)

    async def run(self) -> Stats:
        self._t0 = time.perf_counter()
        tasks = [asyncio.create_task(site.run()) for site in self.sites]
        if not tasks:
            self.go.set()
        waiter = asyncio.ensure_future(asyncio.gather(*tasks))
        stopper = asyncio.create_task(self._stop_sites())
        try:
            if self.cfg.connect_only and self.cfg.hold is not None:
                await self.all_connected.wait()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.cfg.hold)
                self.stop.set()
            await asyncio.wait_for(asyncio.shield(waiter), self.cfg.timeout)
        except TimeoutError:
            self.stats.errors["timed out"] += 1
        finally:
            self.stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), 5)
            for task in (*tasks, stopper):
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
        return self.stats

    async def _stop_sites(self) -> None:
        await self.stop.wait()
        for site in self.sites:
            site.stop()


# --- reporting -------------------------------------------------------------------------------


@dataclass
class Report:
    """The end-of-run figures, as printed and as `--json`."""

    data: dict[str, Any]

    @classmethod
    def of(cls, cfg: LoadConfig, sim: Simulation, session_id: int) -> Report:
        s = sim.stats
        lat = sorted(s.latencies)
        elapsed = (s.last_ack - s.started) if s.started and s.last_ack else 0.0
        ms = {
            name: (round(v * 1000, 2) if (v := percentile(lat, q)) is not None else None)
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        }
        return cls(
            {
                "session": session_id,
                "mode": "connect-only" if cfg.connect_only else "checkin",
                "sites": cfg.sites,
                "connected": s.connected,
                "connect_s": round(s.connect_seconds or 0.0, 3),
                "batch": cfg.batch,
                "window": cfg.window,
                "rate": cfg.rate,
                "events": s.total,
                "acked": s.acked,
                "unacked": sim.unacked if not cfg.connect_only else 0,
                "elapsed_s": round(elapsed, 3),
                "acked_per_s": round(s.acked / elapsed, 1) if elapsed > 0 else None,
                "frames": s.acked_frames,
                "latency_ms": ms,
                "accepted": s.accepted,
                "duplicate": s.duplicate,
                "rejected": s.rejected,
                "reasons": dict(s.reasons),
                "errors": dict(s.errors),
                "disconnects": s.disconnects,
                "connect_failures": s.connect_failures,
                "resent_frames": s.resent_frames,
            }
        )

    @property
    def complete(self) -> bool:
        d = self.data
        return not d["errors"] and not d["unacked"]

    def text(self) -> str:
        d = self.data
        if d["mode"] == "connect-only":
            return (
                f"sites {d['sites']:,}: all said hello in {d['connect_s']:.2f} s; "
                f"connect failures {d['connect_failures']}, disconnects {d['disconnects']}, "
                f"errors {d['errors'] or 0}"
            )
        per_frame = f"batches of {d['batch']}" if d["batch"] else "one event per frame"
        pace = f"{d['rate']:,.0f}/s" if d["rate"] else "as fast as acked"
        lat = d["latency_ms"]

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        rate = f"{d['acked_per_s']:,.0f}" if d["acked_per_s"] else "-"
        lines = [
            f"session {d['session']}, {d['sites']:,} sites, {per_frame}, window {d['window']}, "
            f"{pace}; connected in {d['connect_s']:.2f} s",
            f"acked {d['acked']:,} of {d['events']:,} check-ins in {d['elapsed_s']:.2f} s: "
            f"{rate} acked check-ins/s",
            f"ack latency ms (send → ack of the frame): p50 {f(lat['p50'])}  p90 {f(lat['p90'])}"
            f"  p99 {f(lat['p99'])}  max {f(lat['max'])}",
            f"accepted {d['accepted']:,}  duplicate {d['duplicate']:,}  rejected "
            f"{d['rejected']:,}" + (f" {d['reasons']}" if d["reasons"] else ""),
            f"errors {d['errors'] or 0}  unacked {d['unacked']:,}  disconnects "
            f"{d['disconnects']}  connect failures {d['connect_failures']}  frames resent "
            f"{d['resent_frames']}",
        ]
        return "\n".join(lines)


async def _progress(sim: Simulation, stream: Any, every: float) -> None:
    tty = stream.isatty()
    s = sim.stats
    last_t, last_acked = time.perf_counter(), 0
    while True:
        await asyncio.sleep(every)
        now = time.perf_counter()
        rate = (s.acked - last_acked) / (now - last_t)
        last_t, last_acked = now, s.acked
        if sim.cfg.connect_only:
            text = f"connected {s.connected:,}/{s.sites:,}"
        else:
            share = s.acked / s.total if s.total else 1.0
            text = (
                f"connected {s.connected:,}/{s.sites:,} | acked {s.acked:,}/{s.total:,} "
                f"({share:.0%}) | {rate:,.0f}/s"
            )
        text += f" | disconnects {s.disconnects} | errors {sum(s.errors.values())}"
        stream.write(f"\r\x1b[2K{text}" if tty else f"{text}\n")
        stream.flush()


async def run_load(
    cfg: LoadConfig, *, quiet: bool = False, ready_file: Path | None = None
) -> Report:
    """The whole command: prepare, simulate, report. Ctrl+C stops early and still reports."""

    def log(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    prepared = await prepare(cfg, log)
    sim = Simulation(cfg, prepared)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, sim.stop.set)
    tty = sys.stderr.isatty()
    progress = None
    if not quiet:
        progress = asyncio.create_task(_progress(sim, sys.stderr, 0.25 if tty else 5.0))

    async def mark_ready() -> None:
        await sim.all_connected.wait()
        if ready_file is not None:
            ready_file.write_text(f"{sim.stats.connected}\n")
        log(f"\r\x1b[2Kall {cfg.sites:,} sites connected" if tty else "all sites connected")

    marker = asyncio.create_task(mark_ready())
    try:
        await sim.run()
    finally:
        for task in (progress, marker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if progress is not None and tty:
            sys.stderr.write("\r\x1b[2K")
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return Report.of(cfg, sim, prepared.session_id)


# --- command line ----------------------------------------------------------------------------


def _positive_int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high:,}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} must be {bound}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="streamsvc-load",
        description="Simulate N sites checking M members in over websockets, then report "
        "acked check-ins/s, ack latency and outcomes. Sets up the roster (units PREFIX-Unnn, "
        "members PREFIX-Mnnnnnnn; imported only when missing), a session starting now and "
        "the sites through the admin API.",
    )
    p.add_argument(
        "--url", default="http://127.0.0.1:8080", help="the server (default %(default)s)"
    )
    p.add_argument(
        "--admin-token",
        default=os.environ.get("STREAMSVC_ADMIN_TOKEN"),
        help="admin token (default: $STREAMSVC_ADMIN_TOKEN)",
    )
    p.add_argument(
        "--sites",
        "-n",
        type=_positive_int(1, 100_000),
        default=100,
        help="simulated sites, one websocket each (default %(default)s)",
    )
    p.add_argument(
        "--members",
        "-m",
        type=_positive_int(1, 10_000_000),
        default=10_000,
        help="members in the roster, spread over the sites (default %(default)s)",
    )
    p.add_argument(
        "--units",
        "-u",
        type=_positive_int(1, 10_000),
        default=10,
        help="units the members belong to (default %(default)s)",
    )
    p.add_argument(
        "--events",
        "-e",
        type=_positive_int(1),
        default=None,
        help="check-ins to send in all (default: one per member; more cycle the "
        "members again, which the server accepts as already present)",
    )
    p.add_argument(
        "--batch",
        "-k",
        type=_positive_int(1, MAX_BATCH),
        default=None,
        help="send batches of K events per frame (default: one event per frame)",
    )
    p.add_argument(
        "--window",
        "-w",
        type=_positive_int(1, 10_000),
        default=8,
        help="unacked frames each site may have in flight (default %(default)s)",
    )
    p.add_argument(
        "--rate",
        "-r",
        type=_positive_float,
        default=None,
        help="total events per second, paced evenly over the sites (default: as "
        "fast as the server acks)",
    )
    p.add_argument(
        "--connect-only",
        action="store_true",
        help="only connect the N sites and hold them (for memory measurements)",
    )
    p.add_argument(
        "--hold",
        type=_positive_float,
        default=None,
        help="with --connect-only: seconds to hold the connections (default: until Ctrl+C)",
    )
    p.add_argument(
        "--prefix",
        default="LOAD",
        help="code prefix of the load-test units and members (default %(default)s)",
    )
    p.add_argument(
        "--sites-file",
        type=Path,
        default=None,
        help="keep the session and site tokens in this JSON file and reuse them on "
        "the next run when they still fit",
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="give up after this many seconds of simulation",
    )
    p.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="write this file once all sites are connected (for scripts)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    return p


def _config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> LoadConfig:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        parser.error(f"--url must be http://host:port, not {args.url!r}")
    if not args.admin_token:
        parser.error("an admin token is required: --admin-token or $STREAMSVC_ADMIN_TOKEN")
    if args.hold is not None and not args.connect_only:
        parser.error("--hold goes with --connect-only")
    if args.connect_only and (args.batch or args.rate or args.events):
        parser.error("--connect-only sends nothing: drop --batch, --rate and --events")
    if not 0 < len(args.prefix) <= 20 or not args.prefix.replace("-", "").isalnum():
        parser.error("--prefix must be 1 to 20 letters, digits or dashes")
    if args.units > args.members:
        parser.error(f"--units ({args.units}) cannot exceed --members ({args.members})")
    return LoadConfig(
        url=args.url.rstrip("/"),
        admin_token=args.admin_token,
        sites=args.sites,
        members=args.members,
        units=args.units,
        events=args.events,
        batch=args.batch or 0,
        window=args.window,
        rate=args.rate,
        connect_only=args.connect_only,
        hold=args.hold,
        prefix=args.prefix,
        sites_file=args.sites_file,
        timeout=args.timeout,
    )


def _raise_nofile(wanted: int) -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    cfg = _config(args, parser)
    _raise_nofile(cfg.sites + 256)

    async def go() -> Report:
        return await run_load(cfg, quiet=args.quiet, ready_file=args.ready_file)

    try:
        try:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                report = runner.run(go())
        except ImportError:
            report = asyncio.run(go())
    except LoadError as exc:
        print(f"streamsvc-load: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(report.data))
    else:
        print(report.text())
    return 0 if report.complete else 1


if __name__ == "__main__":
    sys.exit(main())
