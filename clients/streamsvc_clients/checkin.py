"""`streamsvc-checkin`: a site coordinator's check-in client for a barcode scanner or a CSV.

A scanner acting as a keyboard types a member code and Enter; each line becomes a `checkin`
event with its own id and the time it was scanned, is written to the on-disk outbox, and only
then goes out over `/ws/checkin`. When the link drops the client keeps taking scans, and when
it is back it resends everything not acknowledged, in batches; the ids make a resend harmless.
Killed and started again, it sends what the outbox still holds.

`CheckinClient` is the networking core (outbox in, results out through callbacks) and knows
nothing of terminals; `main()` reads the input and prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidURI

from streamsvc.cliparse import OneLineParser
from streamsvc_clients.outbox import (
    Outbox,
    OutboxError,
    default_outbox_path,
    token_fingerprint,
)
from streamsvc_clients.protocol import (
    MAX_BATCH,
    Backoff,
    CheckinLink,
    Frame,
    ProtocolError,
    encode_frame,
    ws_url,
)
from streamsvc_clients.protocol import Unauthorized as LinkUnauthorized

__all__ = [
    "CheckinClient",
    "CheckinError",
    "Command",
    "Status",
    "Unauthorized",
    "describe_result",
    "main",
    "make_event",
    "parse_line",
    "read_csv",
]

WINDOW = 4  # frames in flight; the service acks them in order
CLOSE_TRY_AGAIN_LATER = 1013
MAX_CODE = 64

OnResult = Callable[[dict[str, Any], dict[str, Any]], None]
OnStatus = Callable[["Status"], None]


class CheckinError(Exception):
    """Something a person must fix; the command prints it as one line and exits non-zero."""


class Unauthorized(CheckinError):
    """The service refused the site token: retrying cannot help."""


# --- input: lines and CSV rows ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """One line of input: `checkin` (member), `guests` (count), `void`, or a bad line."""

    kind: str
    member: str | None = None
    count: int | None = None
    error: str | None = None


def parse_line(text: str) -> Command | None:
    """What a typed or scanned line asks for; None for a blank line."""
    line = text.strip().strip("\ufeff")
    if not line:
        return None
    words = line.split()
    head = words[0].lower()
    if head == "guests" and len(words) <= 2:
        if len(words) == 2 and words[1].isdigit() and int(words[1]) <= 1_000_000:
            return Command("guests", count=int(words[1]))
        return Command("error", error="guests needs a whole number: guests 25")
    if head == "void" and len(words) == 1:
        return Command("void")
    if len(line) > MAX_CODE:
        return Command("error", error=f"a member code has at most {MAX_CODE} characters")
    return Command("checkin", member=line)


def read_csv(path: Path) -> list[str]:
    """The lines of a CSV file: its `member` column, or else its first column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CheckinError(f"cannot read {path}: {exc}") from None
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = 0
    if "member" in header:
        column = header.index("member")
        rows = rows[1:]
    elif header[0] in ("code", "member_code", "ma", "mã"):
        rows = rows[1:]
    return [row[column] for row in rows if len(row) > column and row[column].strip()]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(command: Command, now: datetime, target: str | None = None) -> dict[str, Any]:
    """The contract's event for a command: a fresh uuid4 id and `ts` = when it was scanned."""
    event: dict[str, Any] = {"type": command.kind, "id": str(uuid.uuid4())}
    if command.kind == "checkin":
        event["member"] = command.member
    elif command.kind == "guests":
        event["count"] = command.count
    elif command.kind == "void":
        event["target"] = target
        return event  # a void has no ts in the contract
    else:
        raise ValueError(f"no event for {command.kind!r}")
    event["ts"] = _iso(now)
    return event


# --- the networking core ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Status:
    connected: bool
    queued: int
    acked: int


class CheckinClient(CheckinLink):
    """Sends a site's outbox over `/ws/checkin` until told to finish or stop.

    The link (`streamsvc_clients.protocol`) reconnects with jittered exponential backoff and
    resends what is not acknowledged; this class feeds it the outbox, oldest first, in batches
    of up to 1,000 with a few frames in flight, and marks the outbox as acks come. Results come
    out through `on_result(event, result)`; `on_status` hears of every change of link or
    counts, `on_notice` of oddities worth a line.
    """

    def __init__(
        self,
        server: str,
        token: str,
        outbox: Outbox,
        *,
        device: str | None = None,
        on_result: OnResult | None = None,
        on_status: OnStatus | None = None,
        on_welcome: Callable[[dict[str, Any]], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        window: int = WINDOW,
        batch: int = MAX_BATCH,
        open_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            ws_url(server),
            token,
            device=device or socket.gethostname(),
            window=window,
            backoff=Backoff(backoff_initial, backoff_max),
            open_timeout=open_timeout,
        )
        self.outbox = outbox
        self.on_result = on_result or (lambda event, result: None)
        self.on_status = on_status or (lambda status: None)
        self.on_welcome = on_welcome or (lambda welcome: None)
        self.on_notice = on_notice or (lambda text: None)
        self.batch = min(batch, MAX_BATCH)
        self._taken_upto = 0  # outbox seq of the last event handed to the link
        self._told_not_stored = False

    def status(self) -> Status:
        counts = self.outbox.counts()
        return Status(self.connected, counts.queued, counts.acked)

    def notify(self) -> None:
        """New events are in the outbox: send them (if connected)."""
        self.wake()
        self.on_status(self.status())

    async def run(self) -> None:
        """Connect, send, reconnect, until `stop()` or `finish()` and all acked.
        Raises `Unauthorized` when the service refuses the token."""
        try:
            await super().run()
        except LinkUnauthorized as exc:
            raise Unauthorized(str(exc)) from None

    def refill(self) -> Frame | None:
        batch = self.outbox.pending(self.batch, after=self._taken_upto)
        if not batch:
            return None
        self._taken_upto = batch[-1].seq
        return encode_frame([queued.event for queued in batch], keep=True)

    def replied(self, at: float, frame: Frame, message: dict[str, Any]) -> None:
        if message.get("type") == "error":
            # only a malformed frame gets an error; it stays queued and the link restarts
            raise ProtocolError(f"the server answered {message.get('code')!r}")
        results = message.get("results")
        if (
            not isinstance(results, list)
            or [r.get("id") if isinstance(r, dict) else None for r in results] != frame.ids
        ):
            raise ProtocolError("an ack that does not match its frame")
        self.outbox.mark_acked(frame.ids, results)
        self._told_not_stored = False
        for event, result in zip(frame.events or (), results, strict=True):
            self.on_result(event, result)
        self.on_status(self.status())

    def welcomed(self, welcome: dict[str, Any]) -> None:
        self.on_welcome(welcome)

    def lost(self, established: bool, exc: BaseException) -> None:
        if isinstance(exc, ProtocolError):
            self.on_notice(f"the server answered unexpectedly ({exc}); reconnecting")
        elif (
            isinstance(exc, ConnectionClosed)
            and exc.rcvd is not None
            and exc.rcvd.code == CLOSE_TRY_AGAIN_LATER
            and not self._told_not_stored
        ):  # the service could not store them: said once until check-ins are stored again
            self._told_not_stored = True
            self.on_notice(
                f"the server cannot store check-ins now ({exc.rcvd.reason or 'try later'}); "
                "they stay queued and are sent again"
            )

    def connection_changed(self, connected: bool) -> None:
        self.on_status(self.status())


# --- the terminal ----------------------------------------------------------------------------

REASONS = {
    "unknown_member": "unknown code",
    "invalid": "not a valid event",
    "session_closed": "the session is closed",
    "ts_out_of_window": "scanned outside the check-in window (check this device's clock)",
    "unknown_target": "nothing to take back",
}


def _hhmm(ts: Any) -> str:
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).astimezone().strftime("%H:%M")
    except ValueError:
        return str(ts)


def describe_result(
    event: dict[str, Any], result: dict[str, Any], target: dict[str, Any] | None = None
) -> str:
    """One line for the coordinator: what the service made of a scan (`target`: the
    check-in a void takes back, to name its member)."""
    kind = event.get("type")
    outcome = result.get("result")
    what = str(event.get("member") or "")
    if kind == "guests":
        what = f"guests {event.get('count')}"
    elif kind == "void":
        what = f"void of {(target or {}).get('member') or event.get('target')}"
    if outcome == "rejected":
        reason = str(result.get("reason"))
        return f"✗ {what}: {REASONS.get(reason, reason)}"
    if outcome == "duplicate":
        return f"✓ {what}: already stored (sent again)"
    if kind == "guests":
        return f"✓ guests: {event.get('count')}"
    if kind == "void":
        return f"↶ {(target or {}).get('member') or event.get('target')}: check-in taken back"
    member = result.get("member") or {}
    name = member.get("full_name") or ""
    unit_label = member.get("unit_name") or member.get("unit")
    unit = f" ({unit_label})" if unit_label else ""
    line = f"✓ {what} {name}{unit}".rstrip()
    present = result.get("already_present")
    if isinstance(present, dict):
        site = present.get("site_name") or f"site {present.get('site')}"
        line = f"• {what} {name}{unit}: already present at {site} since {_hhmm(present.get('ts'))}"
    return line


def status_line(status: Status) -> str:
    link = "connected" if status.connected else "not connected"
    return f"[{link} · queued {status.queued} · acknowledged {status.acked}]"


class _Printer:
    """Prints results as they come and a status line when the link changes, the queue
    empties, or a few seconds have passed; never a line per ack while a resend pours in."""

    def __init__(
        self, out: TextIO, loop: asyncio.AbstractEventLoop, outbox: Outbox | None = None
    ) -> None:
        self.out, self.loop, self.outbox = out, loop, outbox
        self.last: Status | None = None
        self.last_at = 0.0

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def result(self, event: dict[str, Any], result: dict[str, Any]) -> None:
        target = None
        if event.get("type") == "void" and self.outbox is not None:
            target = self.outbox.event(str(event.get("target")))
        self.line(describe_result(event, result, target))

    def status(self, status: Status, force: bool = False) -> None:
        last, now = self.last, self.loop.time()
        if last == status:
            return
        if (
            force
            or last is None
            or last.connected != status.connected
            or (status.queued == 0 and last.queued != 0)
            or now - self.last_at >= 5.0
        ):
            self.line(status_line(status))
            self.last, self.last_at = status, now

    def welcome(self, welcome: dict[str, Any]) -> None:
        site, session = welcome.get("site") or {}, welcome.get("session") or {}
        self.line(
            f"connected: site {site.get('name')!r} ({site.get('kind')}), "
            f"session {session.get('id')} {session.get('title')!r} ({session.get('state')})"
        )


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Read stdin in a thread (a blocking read of a terminal or a pipe), line by line."""

    def put(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, item)

    try:
        for line in sys.stdin:
            put(line)
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    put(None)


def _batches(queue: asyncio.Queue[str | None], first: str | None) -> Iterator[str | None]:
    """The line just read and whatever else is already waiting: one outbox transaction."""
    yield first
    while True:
        try:
            yield queue.get_nowait()
        except asyncio.QueueEmpty:
            return


class _Session:
    """Turns input lines into outbox events and feeds the client."""

    def __init__(self, client: CheckinClient, printer: _Printer) -> None:
        self.client, self.printer = client, printer

    def take(self, lines: Iterable[str]) -> None:
        events: list[dict[str, Any]] = []
        for text in lines:
            command = parse_line(text)
            if command is None:
                continue
            if command.kind == "error":
                self.printer.line(f"? {text.strip()}: {command.error}")
                continue
            now = datetime.now(UTC)
            if command.kind == "void":
                # the void must see the check-ins queued just before it in this same burst
                self._add(events)
                events = []
                target = self.client.outbox.last_checkin()
                if target is None:
                    self.printer.line("? void: no check-in to take back")
                    continue
                self.printer.line(f"↶ taking back the check-in of {target.get('member')}")
                events.append(make_event(command, now, target=target["id"]))
            else:
                events.append(make_event(command, now))
        self._add(events)

    def _add(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), MAX_BATCH):
            self.client.outbox.add_many(events[start : start + MAX_BATCH])
        if events:
            if not self.client.connected:
                queued = self.client.outbox.counts().queued
                self.printer.line(
                    f"… not connected: {len(events)} kept in the outbox, queued {queued}"
                )
            self.client.notify()


async def run_checkin(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """The whole command: open the outbox, read the input, send, wait (or not), exit code."""
    loop = asyncio.get_running_loop()
    path = Path(args.outbox) if args.outbox else default_outbox_path(args.token)
    outbox = Outbox(path, owner=token_fingerprint(args.token))
    printer = _Printer(out, loop, outbox)
    try:
        client = CheckinClient(
            args.server,
            args.token,
            outbox,
            device=args.device,
            on_result=printer.result,
            on_status=printer.status,
            on_welcome=printer.welcome,
            on_notice=lambda text: printer.line(f"! {text}"),
            backoff_max=args.backoff_max,
        )
        session = _Session(client, printer)
        counts = outbox.counts()
        printer.line(f"outbox {path}: {counts.queued} queued from before")
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, client.stop)
        runner = asyncio.create_task(client.run())
        reader = asyncio.create_task(_read_input(args, session, runner))
        try:
            await runner
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        status = client.status()
        printer.status(status, force=True)
        if status.queued:
            printer.line(f"stopped with {status.queued} queued: they are sent on the next start")
            return 0 if args.no_wait else 1  # interrupted before everything was acknowledged
        return 0
    finally:
        outbox.close()


async def _read_input(
    args: argparse.Namespace, session: _Session, runner: asyncio.Task[None]
) -> None:
    if args.csv is not None:
        session.take(read_csv(Path(args.csv)))
    else:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=_stdin_lines, args=(loop, queue), daemon=True).start()
        ended = False
        while not ended:
            lines: list[str] = []
            for line in _batches(queue, await queue.get()):
                if line is None:
                    ended = True
                    break
                lines.append(line)
            session.take(lines)
    if args.no_wait:
        session.client.stop()
    else:
        session.client.finish()


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="streamsvc-checkin",
        description="Check members in at one site: scan or type member codes (one per line) "
        "or give a CSV. Every scan is kept in an outbox on disk before it is sent, so nothing "
        "is lost offline; the client resends until the server acknowledges. Lines "
        "'guests N' set the site's guest headcount; 'void' takes back the last check-in.",
    )
    p.add_argument("--server", required=True, help="the server, e.g. http://host:8080")
    p.add_argument("--token", required=True, help="this site's coordinator token")
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="read member codes from this CSV (its 'member' column, or else the first "
        "column) instead of the keyboard",
    )
    p.add_argument(
        "--outbox",
        metavar="PATH",
        help="the outbox file (default: one per site token under the user's data "
        "directory, e.g. ~/.local/share/streamsvc/outbox/)",
    )
    p.add_argument("--device", metavar="ID", help="this device's name (default: the host name)")
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="exit when the input ends, even if scans are still queued (sent on the next start)",
    )
    p.add_argument(
        "--backoff-max",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="longest wait between reconnection attempts (default %(default)s)",
    )
    return p


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    parts = urlsplit(args.server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        parser.error(f"--server must be http://host:port, not {args.server!r}")
    if not args.token.strip():
        parser.error("--token is empty")
    if args.csv is not None and not Path(args.csv).is_file():
        parser.error(f"--csv {args.csv!r} is not a readable file")
    if not 0.1 <= args.backoff_max <= 600:
        parser.error("--backoff-max must be from 0.1 to 600 seconds")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check(args, parser)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    try:
        return asyncio.run(run_checkin(args))
    except (CheckinError, OutboxError, InvalidURI) as exc:
        print(f"streamsvc-checkin: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
