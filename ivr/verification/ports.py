"""What the domain needs from storage: the ``Store`` protocol and the records it keeps.

These belong to the domain: stores (``ivr.store.sqlite``, ...) implement the protocol and
import from here; nothing here imports a store. A store runs the domain's decisions
(:mod:`ivr.verification.decisions`) inside its own transaction on the rows it read, and
persists atomically what they say; it holds no product rule of its own.

Every method that makes a verification terminal writes, in the same transaction, the
callback event for it into the outbox, so an event is never lost between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import NamedTuple, Protocol

from ivr.verification.models import Verification, iso
from ivr.vocabulary import AnswerMode, OutboxStatus, Outcome


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call into the gateway and what became of it (the caller number masked)."""

    channel_id: str
    did: str
    trunk: str | None
    caller_masked: str
    presentation: str
    absence: str | None
    outcome: Outcome
    reason: str | None
    answer_mode: AnswerMode
    started_at: float  # the channel's creation: the INVITE reaching Asterisk
    decided_at: float  # outcome decided
    verification_id: str | None = None
    ended_at: float | None = None
    committed_at: float | None = None  # the outcome durably stored (set at the end)

    def as_dict(self) -> dict[str, object]:
        """For operators and portals: the caller is masked (090****5678) already."""
        return {
            "call_id": self.channel_id,
            "did": self.did,
            "trunk": self.trunk,
            "caller": self.caller_masked,
            "presentation": self.presentation,
            "absence": self.absence,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "answer_mode": str(self.answer_mode),
            "verification_id": self.verification_id,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
        }


class CallEnd(NamedTuple):
    """When the gateway let a call go, and when its outcome was committed (if it was)."""

    channel_id: str
    ended_at: float
    committed_at: float | None = None


class Delivery(NamedTuple):
    """A callback event the portal answered with a 2xx."""

    event_id: str
    attempts: int
    http_status: int
    delivered_at: float


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Which calls to list (every field optional; newest first)."""

    since: float | None = None  # started at or after
    outcome: Outcome | None = None
    trunk: str | None = None
    verification_id: str | None = None
    did: str | None = None  # called this dial number
    limit: int = 100


RECENT_CALLS = CallFilter()  # the newest hundred


@dataclass(frozen=True, slots=True)
class NewVerification:
    phone_number: str
    reference: str | None
    callback_url: str | None
    ttl: float
    idempotency_key: str | None = None
    idempotency_scope: str = ""  # which client: its portal
    fingerprint: str = ""  # the request body, to refuse a reused key with another body
    portal: str | None = None  # whose callbacks


@dataclass(frozen=True, slots=True)
class Created:
    verification: Verification
    superseded: tuple[Verification, ...] = ()
    replayed: bool = False  # an Idempotency-Key replay: nothing was created
    # Overdue pending verifications of the same number, settled as expired on the way.
    expired: tuple[Verification, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A callback to deliver (see :class:`ivr.vocabulary.OutboxStatus`)."""

    id: str  # the webhook-id, the same on every attempt
    verification_id: str
    type: str
    payload: str
    callback_url: str | None
    portal: str | None
    created_at: float
    status: OutboxStatus
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
            "status": str(self.status),
            "attempts": self.attempts,
            "created_at": self.created_at,
            "next_attempt_at": self.next_attempt_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at,
        }


CommitListener = Callable[[list[OutboxEvent]], None]
ChangeListener = Callable[[str], None]  # a verification id


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    def set_commit_listener(self, listener: CommitListener | None) -> None:
        """``listener`` is called in the event loop with the outbox events of every
        commit of this process, so the sender delivers them at once, unpolled."""

    def set_change_listener(
        self, on_change: ChangeListener | None, on_resync: Callable[[], None] | None = None
    ) -> None:
        """For a store shared by several gateways: ``on_change`` gets the id of every
        verification another process made terminal; ``on_resync`` is called when such
        news may have been missed (a lost connection). A store of one process ignores it."""

    async def create_verification(
        self, req: NewVerification, pool: Sequence[str], now: float, rng: Random
    ) -> Created: ...

    async def get_verification(self, verification_id: str) -> Verification | None: ...

    async def cancel_verification(
        self, verification_id: str, now: float, reason: str
    ) -> Verification:
        """The verification made terminal: cancelled, or expired when it was overdue
        (committed either way). Raises ``NotFound`` or ``NotPending``."""

    async def match_call(
        self, call: CallRecord, caller_e164: str, caller_raw: str, now: float
    ) -> tuple[CallRecord, Verification | None]:
        """Record the call with its outcome; the verification it verified, if any."""

    async def record_call(self, call: CallRecord) -> None: ...

    async def finish_calls(self, ends: Sequence[CallEnd]) -> None:
        """Record when each call was let go (and its outcome committed), in one write;
        a call's first end counts."""

    async def list_calls(self, query: CallFilter = RECENT_CALLS) -> list[CallRecord]: ...

    async def purge(self, calls_before: float, verifications_before: float) -> tuple[int, int]:
        """Delete (not hide) call records that started before ``calls_before``, and
        verifications that ended before ``verifications_before`` with their callback
        events and idempotency keys; how many calls and verifications went."""

    async def expire_due(self, now: float) -> list[Verification]: ...

    async def next_expiry(self) -> float | None: ...

    async def count_pending(self) -> int: ...

    async def busiest_pending(self) -> int:
        """The most pending verifications any one phone number has (0 when none)."""

    async def outbox_backlog(self) -> int:
        """Callback events not yet delivered (pending, now or at a later attempt)."""

    async def list_outbox(
        self, status: OutboxStatus | None = None, limit: int = 1000
    ) -> list[OutboxEvent]: ...

    async def due_events(self, now: float, per_portal: int) -> list[OutboxEvent]:
        """The first ``per_portal`` due pending events of every portal, oldest due first,
        taken for this process (a shared store leases them, so one gateway at a time
        delivers an event)."""

    async def next_event_at(self) -> float | None: ...

    async def record_attempt(
        self,
        event_id: str,
        status: OutboxStatus,
        attempts: int,
        next_attempt_at: float,
        last_error: str | None = None,
        last_status: int | None = None,
        delivered_at: float | None = None,
    ) -> None: ...

    async def record_deliveries(self, delivered: Sequence[Delivery]) -> None:
        """Mark events delivered, in one write (the sender batches its 2xx answers)."""

    async def release_backlog(self, portal: str | None, now: float) -> int:
        """Make every pending event of ``portal`` due now (the portal is back); how many."""

    async def retry_events(self, event_id: str | None, now: float) -> int:
        """Queue events again (one failed or pending, or every failed one when
        ``event_id`` is None) with a fresh retry window; how many were queued."""

    async def get_event(self, event_id: str) -> OutboxEvent | None: ...
