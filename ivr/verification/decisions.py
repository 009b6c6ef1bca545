"""The product's decisions as plain functions: no I/O, no clock, no database.

A store reads the rows a decision needs, inside its transaction and with whatever locks
its engine takes, calls the function here, and persists what it returns: so SQLite and
PostgreSQL run the same rules, and the rules are tested without either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random

from ivr.verification.errors import IdempotencyConflict, NotFound, NotPending
from ivr.verification.events import terminal_event
from ivr.verification.models import InvalidTransition, Verification, choose_dial_number
from ivr.verification.ports import CallRecord, NewVerification, OutboxEvent
from ivr.vocabulary import OutboxStatus, Outcome

IDEMPOTENCY_TTL = 24 * 3600.0  # how long an Idempotency-Key is remembered


@dataclass(frozen=True, slots=True)
class IdempotentEntry:
    """A stored Idempotency-Key: the request it was first used with and its result."""

    fingerprint: str
    verification: Verification
    created_at: float


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """What a create does. ``replayed``: nothing to write, answer ``verification``.
    Otherwise insert ``verification`` and save every one of ``terminal`` (with its
    callback event)."""

    verification: Verification
    replayed: bool = False
    expired: tuple[Verification, ...] = ()  # overdue ones of the same number, settled
    superseded: tuple[Verification, ...] = ()  # the oldest, when every DID was held

    @property
    def terminal(self) -> tuple[Verification, ...]:
        return self.expired + self.superseded


def plan_create(
    req: NewVerification,
    previous: IdempotentEntry | None,
    pending_same_number: Sequence[Verification],
    pool: Sequence[str],
    now: float,
    rng: Random,
) -> CreatePlan:
    """Plan a create from the key's earlier use (if any, and still remembered) and the
    phone number's pending verifications.

    - The same key and the same request body replay the first answer; another body is
      refused (``IdempotencyConflict``).
    - Pending ones past their expiry are settled as expired: they hold no DID any more.
    - The new verification gets a DID no other pending one of the number holds; when
      all are held, the oldest is superseded (cancelled) and its DID reused.
    """
    if previous is not None and now - previous.created_at < IDEMPOTENCY_TTL:
        if previous.fingerprint != req.fingerprint:
            raise IdempotencyConflict("this Idempotency-Key was used with a different request")
        return CreatePlan(previous.verification, replayed=True)
    expired = tuple(v.expire(now) for v in pending_same_number if v.is_due(now))
    live = [v for v in pending_same_number if not v.is_due(now)]
    dial, oldest = choose_dial_number(pool, live, rng)
    superseded = () if oldest is None else (oldest.cancel(now, "superseded"),)
    v = Verification.new(
        req.phone_number, dial, now, req.ttl, req.reference, req.callback_url, req.portal
    )
    return CreatePlan(v, expired=expired, superseded=superseded)


@dataclass(frozen=True, slots=True)
class MatchPlan:
    """What a call does to the store: record ``record``; save ``changed`` (with its
    callback event) when the call verified or found its verification overdue."""

    record: CallRecord
    changed: Verification | None = None

    @property
    def verified(self) -> Verification | None:
        return self.changed if self.record.outcome is Outcome.VERIFIED else None


def plan_match(
    call: CallRecord, candidate: Verification | None, caller_raw: str, now: float
) -> MatchPlan:
    """The outcome of a call from an eligible, shown number on a known DID, given the
    newest pending verification of that number on that DID (``candidate``)."""
    if candidate is None or candidate.status.terminal:
        return MatchPlan(
            dataclasses.replace(call, outcome=Outcome.NO_PENDING, reason="no_pending_verification")
        )
    if candidate.is_due(now):
        return MatchPlan(
            dataclasses.replace(
                call, outcome=Outcome.NO_PENDING, reason="expired", verification_id=candidate.id
            ),
            candidate.expire(now),
        )
    verified = candidate.verify(now, call.channel_id, call.trunk or "", caller_raw)
    return MatchPlan(
        dataclasses.replace(
            call, outcome=Outcome.VERIFIED, reason=None, verification_id=candidate.id
        ),
        verified,
    )


def plan_cancel(
    verification_id: str, current: Verification | None, now: float, reason: str
) -> Verification:
    """The verification after a cancel: cancelled, or expired when it was already past
    its expiry (the caller commits that, then reports ``NotPending``)."""
    if current is None:
        raise NotFound(f"no verification {verification_id}")
    try:
        return current.expire(now) if current.is_due(now) else current.cancel(now, reason)
    except InvalidTransition:
        raise NotPending(
            f"verification {verification_id} is already {current.status}",
            current_status=str(current.status),
        ) from None


def plan_expiry(pending_due: Sequence[Verification], now: float) -> list[Verification]:
    """Pending verifications at or past their expiry time, expired."""
    return [v.expire(now) for v in pending_due if v.is_due(now)]


def outbox_event(v: Verification, now: float) -> OutboxEvent:
    """The callback event a verification that just became terminal puts in the outbox."""
    event_id, type_, body = terminal_event(v, now)
    return OutboxEvent(
        id=event_id,
        verification_id=v.id,
        type=type_,
        payload=body,
        callback_url=v.callback_url,
        portal=v.portal,
        created_at=now,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        last_error=None,
        last_status=None,
        delivered_at=None,
        retry_since=now,
    )
