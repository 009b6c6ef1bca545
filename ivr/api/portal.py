"""Portal API v1: thin handlers over the verification service (contract: DESIGN.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ivr import numbers
from ivr.api import POLICY, SERVICE, SETTINGS
from ivr.api.schemas import CheckNumber, CreateVerification, json_object
from ivr.store.sqlite import scope_of
from ivr.verification.errors import DomainError, InvalidRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


TOKEN_SCOPE = web.RequestKey("token_scope", str)


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every ``/v1`` route needs one of the configured bearer tokens."""
    if request.path.startswith("/v1/"):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise web.HTTPUnauthorized(
                text="missing bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        tokens = request.app[SETTINGS].api.tokens
        # Compare against every token, so timing does not tell which one nearly matched.
        matched = [hmac.compare_digest(token.encode(), t.encode()) for t in tokens]
        if not any(matched):
            raise web.HTTPUnauthorized(
                text="invalid bearer token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        request[TOKEN_SCOPE] = scope_of(token)
    return await handler(request)


async def create_verification(request: web.Request) -> web.Response:
    data = await json_object(request)
    body = CreateVerification.parse(data)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable characters", field="Idempotency-Key"
        )
    fingerprint = hashlib.sha256(
        json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    created = await request.app[SERVICE].create(
        body.phone_number,
        body.reference,
        body.callback_url,
        body.ttl_seconds,
        idempotency_key=key,
        scope=request.get(TOKEN_SCOPE, ""),
        fingerprint=fingerprint,
    )
    headers = {"Location": f"/v1/verifications/{created.verification.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _json(created.verification.to_api(), 201, headers)


def _wait_seconds(request: web.Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise InvalidRequest("wait must be a number of seconds", field="wait") from None
    if not 0 <= wait < float("inf"):
        raise InvalidRequest("wait must be 0 or more seconds", field="wait")
    return min(wait, float(request.app[SETTINGS].api.max_wait))


async def get_verification(request: web.Request) -> web.Response:
    wait = _wait_seconds(request)
    service = request.app[SERVICE]
    vid = request.match_info["id"]
    v = await service.wait(vid, wait) if wait > 0 else await service.get(vid)
    return _json(v.to_api())


async def cancel_verification(request: web.Request) -> web.Response:
    v = await request.app[SERVICE].cancel(request.match_info["id"])
    return _json(v.to_api())


async def check_number(request: web.Request) -> web.Response:
    body = CheckNumber.parse(await json_object(request))
    verdict = numbers.check(body.phone_number, request.app[POLICY])
    return _json(verdict.as_dict())
