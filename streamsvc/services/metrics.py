"""What the check-in path counts for `/metrics`: plain integers, read only when scraped.

The services add to these as they go (an integer add, a bisect per frame or per group, never
an object per event); `streamsvc.web.metrics` turns them into Prometheus families at scrape
time. Each app has its own, so several apps in one process (the tests) never mix counts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from streamsvc.domain.checkin import Outcome

__all__ = [
    "ACK_SECONDS",
    "COMMIT_SECONDS",
    "COMMIT_SIZE",
    "LAG_SECONDS",
    "Buckets",
    "BusStats",
    "CheckinStats",
]

#: Bucket bounds (seconds) of the ack latency: a frame received -> its ack written.
ACK_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Bucket bounds (seconds) of one group commit's transaction.
COMMIT_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
#: Bucket bounds (events) of one group commit.
COMMIT_SIZE = (1, 5, 10, 50, 100, 500, 1000, 2500, 5000)
#: Bucket bounds (seconds) of the bus: an origin's commit -> published, or applied elsewhere.
LAG_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0)


class Buckets:
    """A histogram kept as plain integers: one bisect and two adds per observation.

    prometheus-client's own Histogram takes a lock and several calls per observation; this
    one is read (and made cumulative) only when `/metrics` is scraped.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """`(le, count)` pairs, cumulative, ending with `+Inf`, as Prometheus wants them."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class CheckinStats:
    """Check-in outcomes, group commits and ack latency on this instance since it started.

    Outcomes are counted once per group commit: `accepted` is the number of events the group
    stored (one per accepted outcome), and only a group that stored fewer events than it was
    given is looked through for its duplicates and rejections by reason.
    """

    __slots__ = (
        "accepted",
        "ack_seconds",
        "bad_frames",
        "commit_failures",
        "commit_seconds",
        "commit_size",
        "others",
    )

    def __init__(self) -> None:
        self.accepted = 0
        #: (result, reason or "") -> count, for every outcome but `accepted`
        self.others: dict[tuple[str, str], int] = {}
        self.bad_frames = 0  # frames answered `bad_message`
        self.commit_failures = 0
        self.commit_size = Buckets(COMMIT_SIZE)
        self.commit_seconds = Buckets(COMMIT_SECONDS)
        self.ack_seconds = Buckets(ACK_SECONDS)

    def count_rejected(self, reason: str, n: int) -> None:
        """Events rejected before they reach a commit (malformed: `invalid`)."""
        key = ("rejected", reason)
        self.others[key] = self.others.get(key, 0) + n

    def count_group(self, outcomes: Sequence[Outcome], stored: int, seconds: float) -> None:
        """One committed group: its size, how long it took, and its outcomes."""
        self.commit_size.observe(len(outcomes))
        self.commit_seconds.observe(seconds)
        self.accepted += stored
        if stored == len(outcomes):
            return
        others = self.others
        for outcome in outcomes:
            if outcome.result != "accepted":
                key = (outcome.result, outcome.reason or "")
                others[key] = others.get(key, 0) + 1


class BusStats:
    """The live hub's traffic on the bus (Redis) on this instance since it started.

    Lags are measured from the events' `received_at` (when the origin began the group
    commit that stored them), once per message, never per event: `publish_lag` until this
    instance's message left for the bus, `apply_lag` until another instance's message was
    applied here (across machines it includes their clock difference).
    """

    __slots__ = ("apply_lag", "dropped", "publish_failures", "publish_lag", "published", "received")

    def __init__(self) -> None:
        self.published = 0
        self.publish_failures = 0
        self.dropped = 0  # messages thrown away while the bus was failing (the store has them)
        self.received = 0  # messages from other instances
        self.publish_lag = Buckets(LAG_SECONDS)
        self.apply_lag = Buckets(LAG_SECONDS)
