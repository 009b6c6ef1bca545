"""Ops routes under ``/admin`` (ops tokens only): the callback outbox."""

from __future__ import annotations

from aiohttp import web

from ivr.api import SENDER, STORE
from ivr.verification.errors import InvalidRequest, NotFound
from ivr.vocabulary import OutboxStatus

_STATUSES = tuple(str(s) for s in OutboxStatus)


async def list_callbacks(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in _STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)}", field="status")
    events = await request.app[STORE].list_outbox(OutboxStatus(status) if status else None)
    return web.json_response({"callbacks": [e.as_dict() for e in events]})


async def retry_callback(request: web.Request) -> web.Response:
    store = request.app[STORE]
    event_id = request.match_info["id"]
    sender = request.app[SENDER]
    if await store.retry_events(event_id, sender.clock()) == 0:
        if await store.get_event(event_id) is None:
            raise NotFound(f"no callback {event_id}")
        raise InvalidRequest(f"callback {event_id} was already delivered")
    sender.kick()
    event = await store.get_event(event_id)
    assert event is not None
    return web.json_response(event.as_dict())


async def retry_failed(request: web.Request) -> web.Response:
    sender = request.app[SENDER]
    count = await request.app[STORE].retry_events(None, sender.clock())
    sender.kick()
    return web.json_response({"requeued": count})
