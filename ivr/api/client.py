"""Routes for browsers: a verification's public status for its login page (client token,
CORS from the portal's ``browser_origins``), the widget script and the QR code of a dial
number. The portal API (``/v1``) and the admin API never answer a browser origin."""

from __future__ import annotations

import io
import time

from aiohttp import web

from ivr import jsoncodec
from ivr.api import CLIENT_TOKENS, SERVICE, SETTINGS
from ivr.api.errors import error_response
from ivr.api.portal import wait_seconds
from ivr.clienttoken import TokenProblem
from ivr.config import package_data
from ivr.verification.client_view import public_view
from ivr.verification.errors import DomainError
from ivr.verification.models import Verification

WIDGET = package_data("widget", "ivr-widget.js")
# A long poll from a page: shorter than the portal API's, so proxies in between keep it.
MAX_CLIENT_WAIT = 25.0


class ClientTokenRefused(DomainError):
    status = 401
    code = "invalid_client_token"


class OriginNotAllowed(DomainError):
    status = 403
    code = "origin_not_allowed"


def _token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token
    return request.query.get("token", "")


def _cors(request: web.Request, v: Verification) -> dict[str, str]:
    """CORS headers for the page's origin: only an origin the verification's portal
    lists; a request without ``Origin`` (not from a browser page) needs none."""
    origin = request.headers.get("Origin")
    if origin is None:
        return {}
    portal = next((p for p in request.app[SETTINGS].portals if p.name == v.portal), None)
    if portal is None or origin not in portal.browser_origins:
        raise OriginNotAllowed(f"origin {origin!r} is not allowed for this verification")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


async def client_verification(request: web.Request) -> web.Response:
    """``GET /client/v1/verifications/{id}?wait=S&seen_hint=AT`` with the client token."""
    vid = request.match_info["id"]
    problem = request.app[CLIENT_TOKENS].check(_token(request), vid, time.time())
    if problem is TokenProblem.EXPIRED:
        raise ClientTokenRefused("the client token has expired", reason="expired")
    if problem is not None:
        raise ClientTokenRefused("invalid client token for this verification", reason="invalid")
    service = request.app[SERVICE]
    cors = _cors(request, await service.get(vid))
    try:
        v, hint = await service.client_view(
            vid, wait_seconds(request, MAX_CLIENT_WAIT), request.query.get("seen_hint")
        )
    except DomainError as exc:  # readable by the page: it passed the origin check
        resp = error_response(exc.status, exc.code, exc.message, exc.details)
        resp.headers.update(cors)
        return resp
    return web.Response(
        body=jsoncodec.dumpb(public_view(v, hint, service.clock())),
        content_type="application/json",
        charset="utf-8",
        headers={**cors, "Cache-Control": "no-store"},
    )


async def client_preflight(request: web.Request) -> web.Response:
    """The browser's CORS preflight for the ``Authorization`` header."""
    v = await request.app[SERVICE].get(request.match_info["id"])
    cors = _cors(request, v)
    if not cors:
        raise web.HTTPBadRequest(text="a preflight needs an Origin")
    return web.Response(
        status=204,
        headers={
            **cors,
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": "Authorization",
            "Access-Control-Max-Age": "600",
        },
    )


async def widget_script(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        WIDGET,
        headers={
            "Content-Type": "text/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def dial_number_qr(request: web.Request) -> web.Response:
    """A QR code of ``tel:<number>`` for a desktop page; only for the gateway's own dial
    numbers, so it is no general-purpose QR service."""
    e164 = request.match_info["e164"]
    if e164 not in request.app[SERVICE].pool:
        raise web.HTTPNotFound(text="not one of this gateway's dial numbers")
    out = io.BytesIO()
    import segno  # on demand: the QR codes are the only user, and few ask

    segno.make(f"tel:{e164}", error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False)
    return web.Response(
        body=out.getvalue(),
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/client/v1/verifications/{id}", client_verification)
    app.router.add_route("OPTIONS", "/client/v1/verifications/{id}", client_preflight)
    app.router.add_get("/widget/v1/ivr-widget.js", widget_script)
    app.router.add_get("/widget/v1/qr/{e164}.svg", dial_number_qr)
