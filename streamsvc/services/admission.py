"""Admission of coordinator connections: a reconnecting crowd must not starve the acks of the
sites already in.

When thousands of devices come back at once (a mobile network's blip, an instance restarted
on the national day), every upgrade, token check and welcome takes event-loop time that the
acks of the connected sites need, and every device resends what it queued meanwhile. An
instance therefore admits new coordinator connections at a steady rate (a token bucket:
`rate` a second, `burst` at once), and none while its group commits are behind (the backlog
of frames waiting to be committed past `backlog_limit`). A refused device is answered 503
with `Retry-After` before the upgrade (no websocket is made) and comes back after it. The
wait is spread over the time the refused crowd needs at `rate`, so the crowd does not come
back in step.

Plain Python with the clock and the randomness injected: tested without a server.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

__all__ = ["MAX_RETRY_AFTER", "Admission"]

#: The longest wait a refused device is told (seconds).
MAX_RETRY_AFTER = 30


class Admission:
    """`admit()` per connection attempt: None to let it in, else whole seconds to wait."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        backlog: Callable[[], int] = lambda: 0,
        backlog_limit: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst = rate, burst
        self.backlog, self.backlog_limit = backlog, backlog_limit
        self._clock, self._uniform = clock, uniform
        self.tokens = float(burst)
        self._last = clock()
        self._refused_recently = 0.0  # refusals, decaying by half every second
        self.admitted = 0
        self.refused = 0

    def admit(self) -> int | None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        self._refused_recently *= 0.5**elapsed
        if self.tokens >= 1.0 and self.backlog() <= self.backlog_limit:
            self.tokens -= 1.0
            self.admitted += 1
            return None
        self.refused += 1
        self._refused_recently += 1.0
        return self._retry_after()

    def _retry_after(self) -> int:
        """Spread the refused over the seconds `rate` needs to let them all in (a crowd of
        3,000 at 500 a second: 1-6 s), at least one second, at most `MAX_RETRY_AFTER`."""
        spread = min(float(MAX_RETRY_AFTER), max(1.0, self._refused_recently / self.rate))
        return max(1, min(MAX_RETRY_AFTER, math.ceil(self._uniform(0.0, spread))))
