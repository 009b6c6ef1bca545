"""Portal API v1: thin handlers over the verification service (contract: DESIGN.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ivr import jsoncodec, numbers
from ivr.api import CLIENT_TOKENS, LIMITS, METRICS, POLICY, SERVICE, SETTINGS
from ivr.api.schemas import CheckNumber, CreateVerification, json_object
from ivr.config import PortalSettings
from ivr.verification.errors import DomainError, InvalidRequest, RateLimited
from ivr.verification.models import Verification

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


PORTAL = web.RequestKey("portal", PortalSettings)


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class BrowserRefused(DomainError):
    status = 403
    code = "browser_origin_refused"


class CallbackNotAllowed(DomainError):
    status = 422
    code = "callback_url_not_allowed"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=jsoncodec.dumpb(data),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(
            text="missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return token


def _invalid_token() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text="invalid bearer token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``/v1`` routes need a portal's token; ``/admin`` routes an ops token."""
    settings = request.app[SETTINGS]
    if request.path.startswith(("/v1/", "/admin/")) and "Origin" in request.headers:
        # Server-to-server only: a page that holds a portal or ops token has leaked it.
        # Browsers read a verification with its client token (/client/v1).
        raise BrowserRefused(
            "this API is not for browsers; a login page uses the verification's client_token"
        )
    if request.path.startswith("/v1/"):
        token = _bearer(request).encode()
        portal = None
        # Compare against every token, so timing does not tell which one nearly matched.
        for candidate in settings.portals:
            for t in candidate.tokens:
                if hmac.compare_digest(token, t.encode()):
                    portal = candidate
        if portal is None:
            raise _invalid_token()
        request[PORTAL] = portal
    elif request.path.startswith("/admin/"):
        token = _bearer(request).encode()
        if not any([hmac.compare_digest(token, t.encode()) for t in settings.api.ops_tokens]):
            raise _invalid_token()
    return await handler(request)


async def create_verification(request: web.Request) -> web.Response:
    data = await json_object(request)
    body = CreateVerification.parse(data)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable characters", field="Idempotency-Key"
        )
    fingerprint = ""  # what a replay of the same key must match: only with a key
    if key is not None:
        fingerprint = hashlib.sha256(
            json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()
    portal = request[PORTAL]
    verdict = numbers.check(body.phone_number, request.app[POLICY])
    _limit(request, request.app[LIMITS].create(portal.name, verdict.e164, time.time()))
    if body.callback_url is not None:
        host = urlsplit(body.callback_url).hostname
        if host not in portal.callback_hosts:
            raise CallbackNotAllowed(
                f"callback_url host {host!r} is not on this portal's allow-list",
                field="callback_url",
            )
    created = await request.app[SERVICE].create(
        body.phone_number,
        body.reference,
        body.callback_url,
        body.ttl_seconds,
        idempotency_key=key,
        portal=portal.name,
        fingerprint=fingerprint,
    )
    headers = {"Location": f"/v1/verifications/{created.verification.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _json(_with_token(request, created.verification), 201, headers)


def _with_token(request: web.Request, v: Verification) -> dict[str, object]:
    """The portal's view, with the handle its login page may hold (``client_token``)."""
    out = v.to_api()
    out["client_token"] = request.app[CLIENT_TOKENS].issue(v.id, v.expires_at)
    return out


def wait_seconds(request: web.Request, cap: float) -> float:
    """The ``wait`` query parameter of a long poll (0 when absent), at most ``cap``."""
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise InvalidRequest("wait must be a number of seconds", field="wait") from None
    if not 0 <= wait < float("inf"):
        raise InvalidRequest("wait must be 0 or more seconds", field="wait")
    return min(wait, cap)


async def get_verification(request: web.Request) -> web.Response:
    wait = wait_seconds(request, float(request.app[SETTINGS].api.max_wait))
    service = request.app[SERVICE]
    vid = request.match_info["id"]
    portal = request[PORTAL].name
    v = await service.wait(vid, wait, portal) if wait > 0 else await service.get(vid, portal)
    return _json(_with_token(request, v))


async def cancel_verification(request: web.Request) -> web.Response:
    v = await request.app[SERVICE].cancel(request.match_info["id"], request[PORTAL].name)
    return _json(v.to_api())


def _limit(request: web.Request, hit: tuple[str, float] | None) -> None:
    if hit is not None:
        limit, wait = hit
        request.app[METRICS].rate_limited.labels(limit).inc()
        raise RateLimited(
            f"too many requests ({limit}); retry after {wait:.1f} s",
            limit=limit,
            retry_after=round(wait, 3),
        )


async def check_number(request: web.Request) -> web.Response:
    _limit(request, request.app[LIMITS].check(request[PORTAL].name, time.time()))
    body = CheckNumber.parse(await json_object(request))
    verdict = numbers.check(body.phone_number, request.app[POLICY])
    return _json(verdict.as_dict())


async def attempts(request: web.Request) -> web.Response:
    """The calls that tried this verification and their outcome (masked callers);
    another portal's verification is not found."""
    calls = await request.app[SERVICE].attempts(request.match_info["id"], request[PORTAL].name)
    return _json({"attempts": [c.as_dict() for c in calls]})
