"""Settings: one frozen dataclass, one default and one help line per field.

The CLI and `STREAMSVC_*` environment variables both end up here; the CLI wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Settings"]


def _opt(default: Any, help: str, env: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "env": env})


@dataclass(frozen=True)
class Settings:
    host: str = _opt("127.0.0.1", "address to listen on", "STREAMSVC_HOST")
    port: int = _opt(8080, "port to listen on", "STREAMSVC_PORT")
    database: str = _opt(
        "sqlite:///streamsvc.db",
        "sqlite:///path/to/file.db (embedded, default) or postgresql://user@host/db",
        "STREAMSVC_DATABASE",
    )
    redis: str | None = _opt(
        None, "redis://host:port/db to share live counts between instances", "STREAMSVC_REDIS"
    )
    admin_token: str | None = _opt(
        None,
        "admin token; made and printed once at first start when unset",
        "STREAMSVC_ADMIN_TOKEN",
    )
    demo: bool = _opt(False, "fill an empty database with a demo province and simulated sites")
    max_body_bytes: int = _opt(
        8 * 1024 * 1024, "largest accepted HTTP body (roster imports)", "STREAMSVC_MAX_BODY_BYTES"
    )
    redis_prefix: str = _opt(
        "streamsvc", "key and channel prefix in Redis", "STREAMSVC_REDIS_PREFIX"
    )
    public_url: str | None = _opt(
        None, "URL the pages are reached at, for links and QR codes", "STREAMSVC_PUBLIC_URL"
    )
    trusted_proxies: str = _opt(
        "",
        "comma-separated addresses of reverse proxies whose X-Forwarded-For is believed "
        "(for sign-in limits per address and the audit log)",
        "STREAMSVC_TRUSTED_PROXIES",
    )
    connect_rate: int = _opt(
        500,
        "coordinator connections admitted per second on this instance (more at once are told "
        "503 with Retry-After, so that a reconnecting crowd does not starve the acks)",
        "STREAMSVC_CONNECT_RATE",
    )
    log_format: str = _opt(
        "text",
        "text (for a person) or json (one JSON object per line, for a log collector)",
        "STREAMSVC_LOG_FORMAT",
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `STREAMSVC_*` variables, then explicit overrides (None means unset)."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            env = f.metadata.get("env")
            if env and environ.get(env):
                raw = environ[env]
                values[f.name] = int(raw) if f.type in ("int", int) else raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def help_lines(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}
