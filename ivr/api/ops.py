"""Health, readiness and the OpenAPI description."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ivr.api import METRICS, MONITOR, NODE_STATE, READY_CHECKS, SERVICE, SETTINGS, STORE
from ivr.api.openapi import spec


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = request.app[READY_CHECKS]
    names = list(checks)
    results = await asyncio.gather(*(checks[n]() for n in names), return_exceptions=True)
    state = {n: r is True for n, r in zip(names, results, strict=True)}
    ready = all(state.values())
    body: dict[str, object] = {"ready": ready, "checks": state}
    if NODE_STATE in request.app:
        body["nodes"] = request.app[NODE_STATE]()
    return web.json_response(body, status=200 if ready else 503)


async def openapi(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    hosts = [h for portal in settings.portals for h in portal.callback_hosts]
    v = settings.verification
    return web.json_response(spec(hosts, (v.min_ttl, v.default_ttl, v.max_ttl)))


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    store = request.app[STORE]
    m.pending.set(await store.count_pending())
    m.callback_backlog.set(await store.outbox_backlog())
    # DIDs still free for the number holding the most: 0 means its next create
    # supersedes one of its own pending verifications.
    pool = len(request.app[SERVICE].pool)
    m.did_headroom.set(max(0, pool - await store.busiest_pending()))
    for state in request.app[MONITOR].snapshot.values():
        m.trunk_up.labels(state.name).set(1.0 if state.up else 0.0)
    return web.Response(
        body=m.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )
