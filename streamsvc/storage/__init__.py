"""The store port's two implementations, picked by the database URL's scheme."""

from __future__ import annotations

from importlib import resources

from streamsvc.errors import InvalidInput
from streamsvc.ports import Store

__all__ = ["migration_scripts", "migrations", "open_store"]


def migration_scripts(backend: str) -> list[tuple[int, str]]:
    """Numbered SQL files of one backend, in order: [(version, sql)]."""
    folder = resources.files("streamsvc.storage") / "migrations" / backend
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(out)


#: The older name, kept for callers (a package folder of the same name hides it from mypy).
migrations = migration_scripts


def open_store(url: str) -> Store:
    """A store for `sqlite:///path` or `postgresql://…` (not yet opened)."""
    if url.startswith("sqlite:"):
        from streamsvc.storage.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    if url.startswith(("postgresql:", "postgres:")):
        from streamsvc.storage.postgres import PostgresStore

        return PostgresStore(url)
    raise InvalidInput(f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://…")
