"""The coordinator client's on-disk outbox: every scan is written here before it is sent.

A site's connection drops, the laptop's battery dies, someone closes the terminal: a scan
that was written to the outbox is sent when the client runs again, and the service's
idempotent event ids make a resend harmless. So the outbox is SQLite in WAL mode with
`synchronous=FULL` (a committed scan survives `kill -9` and power loss), one file per site
token, and nothing here touches the network: the client reads `pending()` and reports acks
with `mark_acked()`.

Acknowledged events stay in the file (with the service's result) so that `void` can find the
last check-in and the status line can count what was acknowledged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "Counts",
    "Outbox",
    "OutboxError",
    "Queued",
    "default_outbox_path",
    "token_fingerprint",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    target TEXT,
    body TEXT NOT NULL,
    added_at TEXT NOT NULL,
    acked_at TEXT,
    result TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS events_target ON events (target) WHERE target IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OutboxError(Exception):
    """The outbox cannot be used (wrong site's file, held by another client, unreadable)."""


@dataclass(frozen=True, slots=True)
class Queued:
    """One event not yet acknowledged; `seq` orders the outbox."""

    seq: int
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Counts:
    queued: int
    acked: int


def token_fingerprint(token: str) -> str:
    """A short hash of a site token: names its outbox file without writing the token down."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _data_dir() -> Path:
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "streamsvc"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "streamsvc"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "streamsvc"


def default_outbox_path(token: str) -> Path:
    """Where a site's outbox lives unless `--outbox` says otherwise: one file per token, so
    two sites on one laptop never mix their scans."""
    return _data_dir() / "outbox" / f"site-{token_fingerprint(token)}.sqlite3"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Outbox:
    """A durable FIFO of events for one site, with each acknowledged event's result kept."""

    def __init__(self, path: str | os.PathLike[str], *, owner: str | None = None) -> None:
        """Open (creating) the outbox at `path`. `owner` (a `token_fingerprint`) is written on
        first use and checked after: queued events of one site must never be sent with
        another site's token. A second client on the same file is refused."""
        self.path = Path(path)
        self._lock_file: Any = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock()
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except OSError as exc:
            self._unlock()
            raise OutboxError(f"cannot open the outbox {self.path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            if owner is not None:
                self._check_owner(owner)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise OutboxError(f"{self.path} is not a usable outbox: {exc}") from None
        except OutboxError:
            self.close()
            raise

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock; one client per file is on the user
            return
        handle = open(f"{self.path}.lock", "a")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutboxError(
                f"another streamsvc-checkin is using the outbox {self.path}"
            ) from None
        self._lock_file = handle

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def _check_owner(self, owner: str) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'owner'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta (key, value) VALUES ('owner', ?)", (owner,))
        elif row[0] != owner:
            raise OutboxError(
                f"the outbox {self.path} belongs to another site token; "
                "give this site its own --outbox"
            )

    def close(self) -> None:
        with contextlib.suppress(AttributeError, sqlite3.Error):
            self._db.close()
        self._unlock()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def add(self, event: dict[str, Any]) -> int:
        """Store one event durably (returns after the fsync); returns its `seq`."""
        return self.add_many([event])[0]

    def add_many(self, events: Iterable[dict[str, Any]]) -> list[int]:
        """Store events in one transaction (one fsync: a CSV of thousands stays quick).
        An event id already in the outbox is kept as it was, as the service does."""
        rows = []
        for event in events:
            event_id, kind = event.get("id"), event.get("type")
            if not isinstance(event_id, str) or not event_id or not isinstance(kind, str):
                raise ValueError(f"an outbox event needs a string id and type: {event!r}")
            target = event.get("target") if kind == "void" else None
            body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            rows.append((event_id, kind, target, body))
        seqs: list[int] = []
        added_at = _now()
        with self._transaction():
            for event_id, kind, target, body in rows:
                self._db.execute(
                    "INSERT OR IGNORE INTO events (id, type, target, body, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (event_id, kind, target, body, added_at),
                )
                (seq,) = self._db.execute(
                    "SELECT seq FROM events WHERE id = ?", (event_id,)
                ).fetchone()
                seqs.append(seq)
        return seqs

    def mark_acked(self, ids: Sequence[str], results: Sequence[dict[str, Any]]) -> None:
        """Record the service's results (one per id, in order): those events are no longer
        pending. Called only with an ack in hand, so an event is never dropped unsent."""
        if len(ids) != len(results):
            raise ValueError(f"{len(ids)} ids but {len(results)} results")
        acked_at = _now()
        with self._transaction():
            self._db.executemany(
                "UPDATE events SET acked_at = ?, result = ? WHERE id = ? AND acked_at IS NULL",
                [
                    (acked_at, json.dumps(result, ensure_ascii=False), event_id)
                    for event_id, result in zip(ids, results, strict=True)
                ],
            )

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- reading --------------------------------------------------------------------------

    def pending(self, limit: int = 1000, after: int = 0) -> list[Queued]:
        """Up to `limit` unacknowledged events with `seq > after`, oldest first."""
        rows = self._db.execute(
            "SELECT seq, body FROM events WHERE acked_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [Queued(seq, json.loads(body)) for seq, body in rows]

    def counts(self) -> Counts:
        queued, acked = self._db.execute(
            "SELECT COALESCE(SUM(acked_at IS NULL), 0), COALESCE(SUM(acked_at IS NOT NULL), 0) "
            "FROM events"
        ).fetchone()
        return Counts(int(queued), int(acked))

    def result(self, event_id: str) -> dict[str, Any] | None:
        """The service's answer to an event, or None while it is pending (or unknown)."""
        row = self._db.execute("SELECT result FROM events WHERE id = ?", (event_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def event(self, event_id: str) -> dict[str, Any] | None:
        """An event as it was queued (a void's target, to name its member)."""
        row = self._db.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def last_checkin(self) -> dict[str, Any] | None:
        """The latest check-in that a `void` may still take back: not rejected by the service
        and not already the target of a void that was not rejected."""
        row = self._db.execute(
            """
            SELECT body FROM events AS e
            WHERE e.type = 'checkin'
              AND (e.result IS NULL OR json_extract(e.result, '$.result') != 'rejected')
              AND NOT EXISTS (
                  SELECT 1 FROM events AS v
                  WHERE v.target = e.id
                    AND (v.result IS NULL OR json_extract(v.result, '$.result') != 'rejected')
              )
            ORDER BY e.seq DESC LIMIT 1
            """
        ).fetchone()
        return json.loads(row[0]) if row else None
