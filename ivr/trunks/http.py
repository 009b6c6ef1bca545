"""``GET /admin/trunks`` (ops token): the trunk snapshot kept current from AMI events."""

from __future__ import annotations

from aiohttp import web

from ivr.api import MONITOR
from ivr.api.errors import error_response


async def trunks(request: web.Request) -> web.Response:
    """503 until the snapshot was first loaded over AMI."""
    monitor = request.app[MONITOR]
    if not monitor.loaded:
        return error_response(503, "not_loaded", "trunk status not loaded yet (AMI)")
    return web.json_response({"trunks": monitor.as_list()})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/trunks", trunks)
