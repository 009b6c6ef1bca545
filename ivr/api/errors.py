"""One middleware turns every error into ``{"error": {"code", "message"}}`` with its status."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ivr import jsoncodec
from ivr.log import get_logger
from ivr.ratelimit import retry_after_header
from ivr.verification.errors import DomainError, RateLimited

log = get_logger("ivr.api")

# What the stores raise when the database refuses or is gone.
STORE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, ConnectionError)


def _store_error(exc: Exception) -> bool:
    """One of STORE_ERRORS, or asyncpg's: checked only when the PostgreSQL store loaded
    it (an SQLite gateway does not import asyncpg, 14 MiB it never uses)."""
    if isinstance(exc, STORE_ERRORS):
        return True
    asyncpg = sys.modules.get("asyncpg")
    return asyncpg is not None and isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update({k: v for k, v in (details or {}).items() if v is not None})
    return web.json_response({"error": body}, status=status, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return jsoncodec.dumps(obj)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        resp = error_response(exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, RateLimited):
            resp.headers["Retry-After"] = retry_after_header(exc.retry_after)
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        resp = error_response(exc.status, code, message or exc.reason)
        for name in ("WWW-Authenticate", "Allow"):
            if name in exc.headers:
                resp.headers[name] = exc.headers[name]
        return resp
    except Exception as exc:
        if _store_error(exc):
            # The store refused or is away (a read-only file, PostgreSQL restarting):
            # nothing was committed, and the client may retry.
            log.error("store_unavailable", method=request.method, path=request.path, error=str(exc))
            resp = error_response(
                503, "store_unavailable", "the store is unavailable; nothing was saved, retry"
            )
            resp.headers["Retry-After"] = "1"
            return resp
        log.exception("api_error", method=request.method, path=request.path)
        return error_response(500, "internal_error", "internal error; see the gateway log")
