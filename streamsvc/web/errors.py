"""The one place where exceptions become HTTP answers in the contract's error shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from streamsvc.errors import StoreUnavailable, StreamsvcError, TooManyAttempts
from streamsvc.web.jsonutil import json_response

__all__ = ["error_middleware", "error_response"]

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_attempts",
}


def error_response(status: int, code: str, message: str, details: object = None) -> web.Response:
    return json_response(
        {"error": {"code": code, "message": message, "details": details}}, status=status
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except StoreUnavailable as exc:
        # The stores raise it for a database out of reach, whichever the backend.
        logger.warning("store unavailable in %s %s: %s", request.method, request.path, exc)
        return json_response(exc.to_json(), status=exc.status)
    except TooManyAttempts as exc:
        response = json_response(exc.to_json(), status=exc.status)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except StreamsvcError as exc:
        return json_response(exc.to_json(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason or code)
    except OSError as exc:
        # A socket or file out of reach below a store or the bus, not a wrong request.
        logger.warning("unavailable in %s %s: %s", request.method, request.path, exc)
        return error_response(503, "unavailable", f"the database is unavailable: {exc}")
    except Exception:
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; it has been logged")
