"""The live-count bus: in-process by default, Redis pub/sub to share counts across instances."""

from __future__ import annotations

from streamsvc.bus.memory import MemoryBus
from streamsvc.ports import Bus

__all__ = ["MemoryBus", "open_bus"]


def open_bus(redis_url: str | None, prefix: str = "streamsvc") -> Bus:
    """The bus the settings ask for: Redis when a URL is given, otherwise in-process."""
    if redis_url:
        from streamsvc.bus.redis import RedisBus

        return RedisBus(redis_url, prefix=prefix)
    return MemoryBus()
