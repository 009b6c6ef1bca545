"""The HTTP API: typed keys for what handlers need, and the route table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ivr import numbers
from ivr.callbacks import CallbackSender
from ivr.clienttoken import ClientTokens
from ivr.config import Settings
from ivr.metrics import Metrics
from ivr.ratelimit import Limits
from ivr.trunks.status import TrunkMonitor
from ivr.verification.ports import Store
from ivr.verification.service import VerificationService

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", VerificationService)
STORE = web.AppKey[Store]("store")
POLICY = web.AppKey("policy", numbers.NumberPolicy)
SENDER = web.AppKey("sender", CallbackSender)
METRICS = web.AppKey("metrics", Metrics)
MONITOR = web.AppKey("monitor", TrunkMonitor)
LIMITS = web.AppKey("limits", Limits)
CLIENT_TOKENS = web.AppKey("client_tokens", ClientTokens)
ReadyCheck = Callable[[], Awaitable[bool]]
READY_CHECKS = web.AppKey[dict[str, ReadyCheck]]("ready_checks")
# Each Asterisk node's ARI connection, up or not (shown by /readyz; ready needs one).
NODE_STATE = web.AppKey[Callable[[], dict[str, bool]]]("node_state")


def add_routes(app: web.Application) -> None:
    from ivr.api import admin, client, ops, portal
    from ivr.trunks import http as trunks_http

    app.router.add_post("/v1/verifications", portal.create_verification)
    app.router.add_get("/v1/verifications/{id}", portal.get_verification)
    app.router.add_post("/v1/verifications/{id}/cancel", portal.cancel_verification)
    app.router.add_get("/v1/verifications/{id}/attempts", portal.attempts)
    app.router.add_post("/v1/phone-numbers/check", portal.check_number)
    app.router.add_get("/admin/callbacks", admin.list_callbacks)
    app.router.add_get("/admin/calls", admin.list_calls)
    app.router.add_post("/admin/callbacks/retry-failed", admin.retry_failed)
    app.router.add_post("/admin/callbacks/{id}/retry", admin.retry_callback)
    client.add_routes(app)
    trunks_http.add_routes(app)
    app.router.add_get("/metrics", ops.metrics)
    app.router.add_get("/healthz", ops.healthz)
    app.router.add_get("/readyz", ops.readyz)
    app.router.add_get("/openapi.json", ops.openapi)
