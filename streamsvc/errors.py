"""The error tree. Each class has a stable snake_case `code` and an HTTP `status`.

Exception classes are mapped to statuses here and rendered in one place
(`web/errors.py`), as the contract's `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "ImportRejected",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "StoreUnavailable",
    "StreamsvcError",
    "TooManyAttempts",
    "Unauthorized",
]


class StreamsvcError(Exception):
    """Root of every error the service answers with on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str, details: Any = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(StreamsvcError):
    status = 400
    code = "bad_request"


class InvalidInput(BadRequest):
    """A field is missing, of the wrong type or out of range."""

    code = "invalid"


class ImportRejected(BadRequest):
    """An all-or-nothing import had bad rows; `details` lists each `{"row", "error"}`."""

    code = "import_rejected"


class Unauthorized(StreamsvcError):
    status = 401
    code = "unauthorized"


class Forbidden(StreamsvcError):
    status = 403
    code = "forbidden"


class NotFound(StreamsvcError):
    status = 404
    code = "not_found"


class Conflict(StreamsvcError):
    status = 409
    code = "conflict"


class PayloadTooLarge(StreamsvcError):
    status = 413
    code = "payload_too_large"


class StoreUnavailable(StreamsvcError):
    status = 503
    code = "unavailable"


class TooManyAttempts(StreamsvcError):
    """Too many failed sign-ins; `retry_after` is whole seconds until the next try counts."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"retry_after": retry_after})
        self.retry_after = retry_after
