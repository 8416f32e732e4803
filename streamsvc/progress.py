"""A small progress bar for long command-line work (imports, exports)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Redraws at most ten times a second, on stderr, only when it is a terminal or forced."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        force: bool = False,
    ) -> None:
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            self._draw()

    def _draw(self, end: str = "\r") -> None:
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30)
            text = f"{self.label} [{bar:<30}] {self.done:,}/{self.total:,} {share:4.0%}"
        else:
            text = f"{self.label} {self.done:,}"
        self.stream.write(f"\x1b[2K{text}{end}" if self.stream.isatty() else f"{text}{end}")
        self.stream.flush()

    def finish(self) -> None:
        elapsed = time.monotonic() - self._start
        if self.enabled:
            self._draw(end="")
            self.stream.write(f" ({elapsed:.1f} s)\n")
            self.stream.flush()
