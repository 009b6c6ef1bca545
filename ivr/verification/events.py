"""Callback events for terminal transitions (what the outbox holds and the portal gets)."""

from __future__ import annotations

import secrets

from ivr import jsoncodec
from ivr.verification.models import Status, Verification, iso

EVENT_TYPES = {
    Status.VERIFIED: "verification.verified",
    Status.EXPIRED: "verification.expired",
    Status.CANCELLED: "verification.cancelled",
}


def new_event_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def terminal_event(v: Verification, now: float) -> tuple[str, str, str]:
    """``(webhook-id, type, body)`` for a verification that just became terminal."""
    if not v.status.terminal:
        raise ValueError(f"verification {v.id} is still pending")
    type_ = EVENT_TYPES[v.status]
    body = jsoncodec.dumps({"type": type_, "timestamp": iso(now), "data": v.to_api()})
    return new_event_id(), type_, body
