"""`streamsvc-monitor`: an organizer's live counts of one session in a terminal.

It follows `/ws/monitor`: a snapshot, then deltas numbered by `seq`. `LiveView` is the pure
part (apply a snapshot, merge a delta, notice a gap and ask for a resync) and `render()` turns
its state into lines; the command around them only connects, reconnects and redraws.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from streamsvc.cliparse import OneLineParser
from streamsvc_clients.protocol import Backoff, ws_url

__all__ = ["LiveView", "MonitorError", "main", "render"]

CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
BAR = 20
CLEAR = "\x1b[H\x1b[2J"


class MonitorError(Exception):
    """Something a person must fix (token refused, no such session): one line, exit 1."""


class LiveView:
    """The session's LIVE as this monitor knows it.

    `apply(message)` returns True when the caller must send `{"type": "resync"}`: a delta
    whose `seq` skips one. Deltas that arrive before the new snapshot are dropped (they are
    older than it or in it), so one gap asks for one resync, not one per delta.
    """

    def __init__(self) -> None:
        self.live: dict[str, Any] | None = None
        self.seq: int | None = None
        self.awaiting_snapshot = True

    def apply(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        seq = message.get("seq")
        if kind == "snapshot" and isinstance(seq, int) and isinstance(message.get("live"), dict):
            self.live = message["live"]
            self.seq = seq
            self.awaiting_snapshot = False
            return False
        if kind != "delta" or not isinstance(seq, int):
            return False
        if self.awaiting_snapshot or self.live is None or self.seq is None:
            return False
        if seq <= self.seq:
            return False  # already in what we have
        if seq != self.seq + 1:
            self.awaiting_snapshot = True
            return True
        self._merge(message)
        self.seq = seq
        return False

    def _merge(self, delta: dict[str, Any]) -> None:
        live = self.live
        assert live is not None
        for key in ("present", "unexpected", "guests", "expected"):
            if key in delta:
                live[key] = delta[key]
        for key, ident in (("sites", "id"), ("units", "code"), ("curve", "minute")):
            changed = delta.get(key)
            if not changed:
                continue
            rows = live.setdefault(key, [])
            where = {row.get(ident): i for i, row in enumerate(rows)}
            for row in changed:
                at = where.get(row.get(ident))
                if at is None:
                    where[row.get(ident)] = len(rows)
                    rows.append(row)
                else:
                    rows[at] = row
            if key == "sites":
                rows.sort(key=lambda s: s.get("id") or 0)
            elif key == "curve":
                rows.sort(key=lambda m: m.get("minute") or "")


def _rate(present: int, expected: int) -> str:
    return f"{present / expected:.1%}" if expected else "-"


def _bar(present: int, expected: int, width: int = BAR) -> str:
    share = min(1.0, present / expected) if expected else 0.0
    full = round(share * width)
    return "█" * full + "░" * (width - full)


def _minutes_since(ts: Any, now: datetime) -> str:
    if not ts:
        return "no event yet"
    try:
        moment = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return str(ts)
    minutes = max(0, int((now - moment).total_seconds() // 60))
    return f"last event {minutes} min ago"


def _depths(units: list[dict[str, Any]]) -> dict[Any, int]:
    parents = {u.get("code"): u.get("parent") for u in units}
    depths: dict[Any, int] = {}
    for code in parents:
        depth, seen, at = 0, {code}, parents.get(code)
        while at is not None and at in parents and at not in seen:
            seen.add(at)
            depth += 1
            at = parents.get(at)
        depths[code] = depth
    return depths


def render(
    live: dict[str, Any],
    now: datetime,
    *,
    title: str | None = None,
    connected: bool = True,
    depth: int = 2,
) -> list[str]:
    """The screen: totals, the top `depth` levels of units with a bar, then every site."""
    expected, present = int(live.get("expected") or 0), int(live.get("present") or 0)
    head = f"session {live.get('session')}" + (f" · {title}" if title else "")
    lines = [
        head + ("" if connected else "  (reconnecting…)"),
        f"present {present} of {expected} ({_rate(present, expected)})  "
        f"guests {live.get('guests', 0)}  unexpected {live.get('unexpected', 0)}",
    ]
    units = list(live.get("units") or [])
    if units:
        depths = _depths(units)
        shown = [u for u in units if depths.get(u.get("code"), 0) < depth]
        width = max(len("  " * depths.get(u.get("code"), 0) + str(u.get("name"))) for u in shown)
        width = min(width, 40)
        lines += ["", "units"]
        for u in shown:
            label = "  " * depths.get(u.get("code"), 0) + str(u.get("name"))
            up, ue = int(u.get("present") or 0), int(u.get("expected") or 0)
            lines.append(
                f"  {label[:width]:<{width}}  {up:>6} / {ue:<6} {_rate(up, ue):>6}  {_bar(up, ue)}"
            )
    sites = list(live.get("sites") or [])
    if sites:
        width = min(40, max(len(str(s.get("name"))) for s in sites))
        lines += ["", "sites"]
        for s in sites:
            link = "connected" if s.get("connected") else "silent"
            lines.append(
                f"  {str(s.get('name'))[:width]:<{width}}  {s.get('kind', ''):<10} "
                f"present {s.get('present', 0):>5}  guests {s.get('guests', 0):>4}  "
                f"{link:<9}  {_minutes_since(s.get('last_event_at'), now)}"
            )
    return lines


# --- the connection --------------------------------------------------------------------------


class _Screen:
    """Redraws in place on a terminal; elsewhere prints the block at most every `every` s."""

    def __init__(self, out: TextIO, every: float) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = every
        self.last_at = -1e9

    def draw(self, lines: list[str], loop_time: float, force: bool = False) -> None:
        if not self.tty and not force and loop_time - self.last_at < self.every:
            return
        self.last_at = loop_time
        text = "\n".join(lines) + "\n"
        self.out.write(CLEAR + text if self.tty else text + "\n")
        self.out.flush()


async def _hello(ws: ClientConnection, token: str, session: int) -> None:
    await ws.send(json.dumps({"type": "hello", "token": token, "session": session}))


async def _title(server: str, token: str, session: int) -> str | None:
    """The session's title for the header, over HTTP; the counts do not need it."""
    url = f"{server.rstrip('/')}/api/v1/sessions/{session}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp,
        ):
            if resp.status != 200:
                return None
            body = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    title = body.get("title") if isinstance(body, dict) else None
    return title if isinstance(title, str) else None


def _error_of(message: dict[str, Any]) -> MonitorError | None:
    if message.get("type") != "error":
        return None
    code = message.get("code")
    if code == "unauthorized":
        return MonitorError("the server refused the admin token")
    if code == "not_found":
        return MonitorError(str(message.get("message") or "no such session"))
    return None


async def follow(
    server: str,
    token: str,
    session: int,
    out: TextIO,
    *,
    once: bool = False,
    depth: int = 2,
    backoff_max: float = 10.0,
    every: float = 10.0,
) -> None:
    """Show the session's live counts until cancelled (or one snapshot with `once`)."""
    view = LiveView()
    screen = _Screen(out, every)
    title = await _title(server, token, session)
    loop = asyncio.get_running_loop()
    backoff, first = Backoff(0.5, backoff_max), True
    while True:
        connected = False
        try:
            async with connect(
                ws_url(server, "/ws/monitor"),
                open_timeout=10,
                close_timeout=2,
                max_size=None,
                proxy=None,
            ) as ws:
                await _hello(ws, token, session)
                view.awaiting_snapshot = True
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 30.0)
                    except TimeoutError:  # no delta for a while: minutes-ago still move
                        if once:
                            raise MonitorError("no snapshot from the server in 30 s") from None
                        if view.live is not None:
                            lines = render(view.live, datetime.now(UTC), title=title, depth=depth)
                            screen.draw(lines, loop.time(), force=screen.tty)
                        continue
                    message = json.loads(raw)
                    if not isinstance(message, dict):
                        continue
                    error = _error_of(message)
                    if error is not None:
                        raise error
                    if view.apply(message):
                        await ws.send(json.dumps({"type": "resync"}))
                        continue
                    if view.live is None or message.get("type") not in ("snapshot", "delta"):
                        continue
                    connected = True
                    backoff.reset()
                    lines = render(view.live, datetime.now(UTC), title=title, depth=depth)
                    if once:
                        out.write("\n".join(lines) + "\n")
                        out.flush()
                        return
                    screen.draw(lines, loop.time(), force=first or message["type"] == "snapshot")
                    first = False
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code == CLOSE_UNAUTHORIZED:
                raise MonitorError("the server refused the admin token") from None
            if code == CLOSE_NOT_FOUND:
                raise MonitorError(f"session {session} not found") from None
        except (InvalidHandshake, OSError, TimeoutError, ValueError):
            if once:
                raise MonitorError(f"cannot reach {server}") from None
        if once:
            raise MonitorError(f"{server} closed the connection before a snapshot")
        if view.live is not None and connected:
            screen.draw(
                render(view.live, datetime.now(UTC), title=title, connected=False, depth=depth),
                loop.time(),
                force=True,
            )
        await asyncio.sleep(backoff.next())


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="streamsvc-monitor",
        description="Live counts of one session: present of expected, guests, unexpected, "
        "per unit and per site. Redraws in place on a terminal; prints plain blocks when "
        "piped. Reconnects by itself.",
    )
    p.add_argument("--server", required=True, help="the server, e.g. http://host:8080")
    p.add_argument("--token", required=True, help="the admin token")
    p.add_argument("--session", required=True, type=int, metavar="SID", help="the session id")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument(
        "--depth",
        type=int,
        default=2,
        help="unit levels to show, from the audience roots down (default %(default)s)",
    )
    p.add_argument(
        "--every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="when not on a terminal: print at most this often (default %(default)s)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    parts = urlsplit(args.server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        parser.error(f"--server must be http://host:port, not {args.server!r}")
    if args.session < 1:
        parser.error("--session must be a session id (a positive whole number)")
    if args.depth < 1:
        parser.error("--depth must be at least 1")
    if args.every <= 0:
        parser.error("--every must be positive")

    async def go() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        await follow(
            args.server,
            args.token,
            args.session,
            sys.stdout,
            once=args.once,
            depth=args.depth,
            every=args.every,
        )

    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    try:
        asyncio.run(go())
    except (MonitorError, InvalidURI) as exc:
        print(f"streamsvc-monitor: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
