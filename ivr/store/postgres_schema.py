"""The PostgreSQL schema: numbered migrations, column lists and row conversions.

Times are POSIX seconds in ``double precision``, as in SQLite, so both stores hold the
same values and the domain never sees an engine's own time type.
"""

from __future__ import annotations

from typing import Any

from ivr.verification.models import Status, Verification
from ivr.verification.ports import CallRecord, OutboxEvent
from ivr.vocabulary import AnswerMode, OutboxStatus, Outcome

# Migration N moves the schema from version N-1 to N; ``ivr_schema`` records each one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE verifications (
        id text PRIMARY KEY,
        phone_number text NOT NULL,
        dial_number text NOT NULL,
        status text NOT NULL,
        created_at double precision NOT NULL,
        expires_at double precision NOT NULL,
        reference text,
        callback_url text,
        verified_at double precision,
        channel_id text,
        trunk text,
        caller_number text,
        ended_at double precision,
        cancel_reason text,
        portal text
    );
    CREATE INDEX verifications_pending ON verifications (phone_number, dial_number)
        WHERE status = 'pending';
    CREATE INDEX verifications_expiry ON verifications (expires_at) WHERE status = 'pending';
    CREATE TABLE idempotency_keys (
        scope text NOT NULL,
        key text NOT NULL,
        fingerprint text NOT NULL,
        verification_id text NOT NULL REFERENCES verifications (id),
        created_at double precision NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE calls (
        seq bigserial PRIMARY KEY,
        channel_id text NOT NULL,
        did text NOT NULL,
        trunk text,
        caller_masked text NOT NULL,
        presentation text NOT NULL,
        absence text,
        outcome text NOT NULL,
        reason text,
        answer_mode text NOT NULL,
        started_at double precision NOT NULL,
        decided_at double precision NOT NULL,
        verification_id text,
        ended_at double precision,
        committed_at double precision
    );
    CREATE INDEX calls_channel ON calls (channel_id);
    CREATE TABLE outbox (
        id text PRIMARY KEY,
        verification_id text NOT NULL,
        type text NOT NULL,
        payload text NOT NULL,
        callback_url text,
        portal text,
        created_at double precision NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at double precision NOT NULL,
        last_error text,
        last_status integer,
        delivered_at double precision,
        retry_since double precision NOT NULL,
        -- Which gateway holds the event, and until when (the shared outbox's lease).
        leased_by text,
        lease_until double precision
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX outbox_status ON outbox (status, created_at);
    """,
)

V_COLUMNS = (
    "id, phone_number, dial_number, status, created_at, expires_at, reference, callback_url, "
    "verified_at, channel_id, trunk, caller_number, ended_at, cancel_reason, portal"
)
V_PARAMS = ", ".join(f"${i}" for i in range(1, 16))
CALL_COLUMNS = (
    "channel_id, did, trunk, caller_masked, presentation, absence, outcome, reason, "
    "answer_mode, started_at, decided_at, verification_id, ended_at, committed_at"
)
CALL_PARAMS = ", ".join(f"${i}" for i in range(1, 15))
OUTBOX_COLUMNS = (
    "id, verification_id, type, payload, callback_url, portal, created_at, status,"
    " attempts, next_attempt_at, last_error, last_status, delivered_at, retry_since"
)


def row_to_verification(row: Any) -> Verification:
    return Verification(
        id=row["id"],
        phone_number=row["phone_number"],
        dial_number=row["dial_number"],
        status=Status(row["status"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        reference=row["reference"],
        callback_url=row["callback_url"],
        verified_at=row["verified_at"],
        channel_id=row["channel_id"],
        trunk=row["trunk"],
        caller_number=row["caller_number"],
        ended_at=row["ended_at"],
        cancel_reason=row["cancel_reason"],
        portal=row["portal"],
    )


def verification_values(v: Verification) -> tuple[Any, ...]:
    return (
        v.id,
        v.phone_number,
        v.dial_number,
        str(v.status),
        v.created_at,
        v.expires_at,
        v.reference,
        v.callback_url,
        v.verified_at,
        v.channel_id,
        v.trunk,
        v.caller_number,
        v.ended_at,
        v.cancel_reason,
        v.portal,
    )


def call_values(c: CallRecord) -> tuple[Any, ...]:
    return (
        c.channel_id,
        c.did,
        c.trunk,
        c.caller_masked,
        c.presentation,
        c.absence,
        str(c.outcome),
        c.reason,
        str(c.answer_mode),
        c.started_at,
        c.decided_at,
        c.verification_id,
        c.ended_at,
        c.committed_at,
    )


def row_to_call(row: Any) -> CallRecord:
    return CallRecord(
        channel_id=row["channel_id"],
        did=row["did"],
        trunk=row["trunk"],
        caller_masked=row["caller_masked"],
        presentation=row["presentation"],
        absence=row["absence"],
        outcome=Outcome(row["outcome"]),
        reason=row["reason"],
        answer_mode=AnswerMode(row["answer_mode"]),
        started_at=row["started_at"],
        decided_at=row["decided_at"],
        verification_id=row["verification_id"],
        ended_at=row["ended_at"],
        committed_at=row["committed_at"],
    )


def row_to_event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        id=row["id"],
        verification_id=row["verification_id"],
        type=row["type"],
        payload=row["payload"],
        callback_url=row["callback_url"],
        portal=row["portal"],
        created_at=row["created_at"],
        status=OutboxStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        last_status=row["last_status"],
        delivered_at=row["delivered_at"],
        retry_since=row["retry_since"],
    )
