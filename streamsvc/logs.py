"""How `streamsvc serve` writes its log: plain lines for a person, or JSON lines for a collector.

`cli.py` calls `configure` once; nothing else sets up logging. Every line goes through
`SecretFilter` first: the admin token and the passwords in the database and Redis URLs are
known at start, and any of them that ever reaches a message is replaced by `***`.
Site tokens are never known here: the code never logs one (a test greps a real server's log).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

__all__ = ["FORMATS", "JsonFormatter", "SecretFilter", "configure", "redact_url", "secrets_of"]

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

# What every LogRecord has; anything else on a record came from `extra=` and is kept.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def redact_url(url: str | None) -> str:
    """The URL with any password replaced by `***` and the query dropped (it may carry
    one too), for banners and log lines."""
    if not url:
        return ""
    base = url.split("?", 1)[0].split("#", 1)[0]
    parts = urlsplit(base)
    if parts.password is None:
        return base
    user, _, host = parts.netloc.rpartition("@")
    return base.replace(parts.netloc, f"{user.split(':', 1)[0]}:{MASK}@{host}", 1)


def secrets_of(values: Iterable[str | None]) -> list[str]:
    """What must never be logged among settings: a token as it is, a URL's password."""
    out: list[str] = []
    for value in values:
        if not value:
            continue
        if "://" in value:
            parts = urlsplit(value)
            if parts.password:
                out.append(parts.password)
            out.extend(parse_qs(parts.query).get("password", []))
        else:
            out.append(value)
    return out


class SecretFilter(logging.Filter):
    """Replaces known secrets in a record's message (and traceback) by `***`."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        # short strings would mask ordinary words; every real secret here is longer
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = self._mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        return True

    def _mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts` (UTC, RFC 3339), `level`, `logger`, `message`, any
    `extra=` fields, and `exc` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=str).decode()


def configure(level: str, fmt: str, secrets: Iterable[str | None] = ()) -> None:
    """Send every record at `level` and above to stderr in `fmt` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # one line per request would flood the log on the day; errors still come through
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
