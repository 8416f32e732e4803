"""What the fault tests share: coordinators checking in at a steady pace that note when each
ack and welcome arrives, and the rule for a server of the test's own that cannot start here."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from streamsvc_clients.protocol import Backoff, CheckinLink, Frame, encode_frame

__all__ = ["SteadySite", "skip_or_fail"]


def skip_or_fail(reason: str | None) -> None:
    """Skip (outside CI) or fail (CI=true) when a server the test starts itself cannot run."""
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


class SteadySite(CheckinLink):
    """A coordinator checking in its own members, one per frame, every `interval` seconds;
    `acks` and `welcomes` hold when each arrived (`time.perf_counter()`)."""

    def __init__(
        self, url: str, token: str, members: list[str], *, interval: float, ceiling: float
    ) -> None:
        super().__init__(
            url,
            token,
            device=f"steady-{uuid.uuid4().hex[:8]}",
            window=4,
            backoff=Backoff(0.1, ceiling),
            ping_interval=None,
            interval=interval,
        )
        self.members = iter(members)
        self.sending = True
        self.sent: list[str] = []
        self.results: dict[str, str] = {}
        self.acks: list[float] = []
        self.welcomes: list[float] = []

    def refill(self) -> Frame | None:
        code = next(self.members, None) if self.sending else None
        if code is None:
            return None
        ts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        event = {"type": "checkin", "id": str(uuid.uuid4()), "member": code, "ts": ts}
        self.sent.append(event["id"])
        return encode_frame([event])

    def welcomed(self, welcome: dict[str, Any]) -> None:
        self.welcomes.append(time.perf_counter())

    def replied(self, at: float, frame: Frame, message: dict[str, Any]) -> None:
        assert message.get("type") == "ack", message
        self.acks.append(at)
        for event_id, result in zip(frame.ids, message["results"], strict=True):
            self.results[event_id] = result["result"]

    def back_after(self, moment: float) -> float | None:
        """Seconds from `moment` to this site's first ack after it."""
        return next((at - moment for at in self.acks if at >= moment), None)

    def wind_down(self) -> None:
        """Send nothing new; `run()` returns once everything sent is acknowledged."""
        self.sending = False
        self.finish()
