"""Ops routes under ``/admin`` (ops tokens only): the callback outbox."""

from __future__ import annotations

import math

from aiohttp import web

from ivr.api import SENDER, SERVICE, STORE
from ivr.verification.errors import DomainError, InvalidRequest, NotFound
from ivr.verification.ports import CallFilter
from ivr.vocabulary import OutboxStatus, Outcome

_STATUSES = tuple(str(s) for s in OutboxStatus)


class AlreadyDelivered(DomainError):
    status = 409  # a conflict with the event's state, like cancelling a verified one
    code = "already_delivered"


_OUTCOMES = tuple(str(o) for o in Outcome)


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
        raise AlreadyDelivered(f"callback {event_id} was already delivered; nothing to retry")
    sender.kick()
    event = await store.get_event(event_id)
    assert event is not None
    return web.json_response(event.as_dict())


async def retry_failed(request: web.Request) -> web.Response:
    sender = request.app[SENDER]
    count = await request.app[STORE].retry_events(None, sender.clock())
    sender.kick()
    return web.json_response({"requeued": count})


def _since(raw: str | None) -> float | None:
    """``since``: POSIX seconds."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidRequest("since must be POSIX seconds", field="since")
    return value


async def list_calls(request: web.Request) -> web.Response:
    """Every call and its outcome, newest first; callers masked (ops token)."""
    q = request.query
    outcome = q.get("outcome")
    if outcome is not None and outcome not in _OUTCOMES:
        raise InvalidRequest(f"outcome must be one of {', '.join(_OUTCOMES)}", field="outcome")
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        limit = -1
    if not 1 <= limit <= 10000:
        raise InvalidRequest("limit must be between 1 and 10000", field="limit")
    query = CallFilter(
        since=_since(q.get("since")),
        outcome=Outcome(outcome) if outcome else None,
        trunk=q.get("trunk"),
        limit=limit,
    )
    calls = await request.app[SERVICE].list_calls(query)
    return web.json_response({"calls": [c.as_dict() for c in calls]})
