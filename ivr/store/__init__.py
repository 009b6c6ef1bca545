"""Persistence: the ``Store`` protocol, and the records it keeps beside verifications.

The embedded default is :class:`ivr.store.sqlite.SqliteStore`. Every method that changes
a verification writes, in the same transaction, the callback event for a terminal
transition into the outbox, so an event is never lost between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Protocol

from ivr.verification.models import Verification


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call into the gateway and what became of it (the caller number masked)."""

    channel_id: str
    did: str
    trunk: str | None
    caller_masked: str
    presentation: str
    absence: str | None
    outcome: str
    reason: str | None
    answer_mode: str
    started_at: float  # the channel's creation: the INVITE reaching Asterisk
    decided_at: float  # outcome committed
    verification_id: str | None = None
    ended_at: float | None = None
    committed_at: float | None = None  # the outcome durably stored (set at the end)


@dataclass(frozen=True, slots=True)
class NewVerification:
    phone_number: str
    reference: str | None
    callback_url: str | None
    ttl: float
    idempotency_key: str | None = None
    idempotency_scope: str = ""  # which client: a hash of its token
    fingerprint: str = ""  # the request body, to refuse a reused key with another body
    portal: str | None = None  # whose callbacks


@dataclass(frozen=True, slots=True)
class Created:
    verification: Verification
    superseded: tuple[Verification, ...] = ()
    replayed: bool = False  # an Idempotency-Key replay: nothing was created


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A callback to deliver. ``status``: pending, delivered, failed (retries exhausted or
    refused by the portal; replayable), or no_url (nowhere to send it)."""

    id: str  # the webhook-id, the same on every attempt
    verification_id: str
    type: str
    payload: str
    callback_url: str | None
    portal: str | None
    created_at: float
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    last_status: int | None
    delivered_at: float | None
    retry_since: float  # the retry window starts here (creation, or a manual retry)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "verification_id": self.verification_id,
            "type": self.type,
            "portal": self.portal,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "next_attempt_at": self.next_attempt_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at,
        }


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def create_verification(
        self, req: NewVerification, pool: Sequence[str], now: float, rng: Random
    ) -> Created: ...

    async def get_verification(self, verification_id: str) -> Verification | None: ...

    async def cancel_verification(
        self, verification_id: str, now: float, reason: str
    ) -> Verification: ...

    async def match_call(
        self, call: CallRecord, caller_e164: str, caller_raw: str, now: float
    ) -> tuple[CallRecord, Verification | None]: ...

    async def record_call(self, call: CallRecord) -> None: ...

    async def finish_call(
        self, channel_id: str, ended_at: float, committed_at: float | None = None
    ) -> None: ...

    async def list_calls(self, limit: int = 100) -> list[CallRecord]: ...

    async def expire_due(self, now: float) -> list[Verification]: ...

    async def next_expiry(self) -> float | None: ...

    async def count_pending(self) -> int: ...

    async def list_outbox(
        self, status: str | None = None, limit: int = 1000
    ) -> list[OutboxEvent]: ...

    async def due_events(self, now: float, per_portal: int) -> list[OutboxEvent]: ...

    async def next_event_at(self) -> float | None: ...

    async def record_attempt(
        self,
        event_id: str,
        status: str,
        attempts: int,
        next_attempt_at: float,
        last_error: str | None = None,
        last_status: int | None = None,
        delivered_at: float | None = None,
    ) -> None: ...

    async def retry_events(self, event_id: str | None, now: float) -> int: ...

    async def get_event(self, event_id: str) -> OutboxEvent | None: ...
