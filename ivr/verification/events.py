"""Callback events for terminal transitions (what the outbox holds and the portal gets)."""

from __future__ import annotations

from ivr import jsoncodec
from ivr.verification.models import Status, Verification, iso, time_ordered_id

EVENT_TYPES = {
    Status.VERIFIED: "verification.verified",
    Status.EXPIRED: "verification.expired",
    Status.CANCELLED: "verification.cancelled",
}


def new_event_id(now: float) -> str:
    """The webhook-id: time-ordered, like a verification's (the outbox's primary key)."""
    return time_ordered_id("msg_", now, 12)


def terminal_event(v: Verification, now: float) -> tuple[str, str, str]:
    """``(webhook-id, type, body)`` for a verification that just became terminal."""
    if not v.status.terminal:
        raise ValueError(f"verification {v.id} is still pending")
    type_ = EVENT_TYPES[v.status]
    body = jsoncodec.dumps({"type": type_, "timestamp": iso(now), "data": v.to_api()})
    return new_event_id(now), type_, body
