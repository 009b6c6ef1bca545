"""Rows as both stores keep them: the column lists and the conversions between a row
(a tuple, or anything indexed the same way, such as an asyncpg Record) and a record.

SQLite and PostgreSQL tables have the same columns in the same order, so one set of
conversions serves both; each store adds only its own SQL and placeholders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ivr.verification.models import Status, Verification
from ivr.verification.ports import CallFilter, CallRecord, OutboxEvent
from ivr.vocabulary import AnswerMode, OutboxStatus, Outcome

V_COLUMNS = (
    "id, phone_number, dial_number, status, created_at, expires_at, reference, callback_url, "
    "verified_at, channel_id, trunk, caller_number, ended_at, cancel_reason, portal"
)
CALL_COLUMNS = (
    "channel_id, did, trunk, caller_masked, presentation, absence, outcome, reason, "
    "answer_mode, started_at, decided_at, verification_id, ended_at, committed_at"
)
OUTBOX_COLUMNS = (
    "id, verification_id, type, payload, callback_url, portal, created_at, status,"
    " attempts, next_attempt_at, last_error, last_status, delivered_at, retry_since"
)


def row_to_verification(row: Sequence[Any]) -> Verification:
    return Verification(
        id=row[0],
        phone_number=row[1],
        dial_number=row[2],
        status=Status(row[3]),
        created_at=row[4],
        expires_at=row[5],
        reference=row[6],
        callback_url=row[7],
        verified_at=row[8],
        channel_id=row[9],
        trunk=row[10],
        caller_number=row[11],
        ended_at=row[12],
        cancel_reason=row[13],
        portal=row[14],
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


def row_to_call(row: Sequence[Any]) -> CallRecord:
    return CallRecord(
        channel_id=row[0],
        did=row[1],
        trunk=row[2],
        caller_masked=row[3],
        presentation=row[4],
        absence=row[5],
        outcome=Outcome(row[6]),
        reason=row[7],
        answer_mode=AnswerMode(row[8]),
        started_at=row[9],
        decided_at=row[10],
        verification_id=row[11],
        ended_at=row[12],
        committed_at=row[13],
    )


def row_to_event(row: Sequence[Any]) -> OutboxEvent:
    return OutboxEvent(
        id=row[0],
        verification_id=row[1],
        type=row[2],
        payload=row[3],
        callback_url=row[4],
        portal=row[5],
        created_at=row[6],
        status=OutboxStatus(row[7]),
        attempts=row[8],
        next_attempt_at=row[9],
        last_error=row[10],
        last_status=row[11],
        delivered_at=row[12],
        retry_since=row[13],
    )


def outbox_values(e: OutboxEvent) -> tuple[Any, ...]:
    return (
        e.id,
        e.verification_id,
        e.type,
        e.payload,
        e.callback_url,
        e.portal,
        e.created_at,
        str(e.status),
        e.attempts,
        e.next_attempt_at,
        e.last_error,
        e.last_status,
        e.delivered_at,
        e.retry_since,
    )


def call_where(query: CallFilter, mark: Callable[[int], str]) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause of a call listing and its arguments; ``mark(n)`` is the n-th
    placeholder (``?`` for SQLite, ``$n`` for PostgreSQL)."""
    clauses: list[str] = []
    args: list[Any] = []
    for column, op, value in (
        ("started_at", ">=", query.since),
        ("outcome", "=", str(query.outcome) if query.outcome else None),
        ("trunk", "=", query.trunk),
        ("verification_id", "=", query.verification_id),
        ("did", "=", query.did),
    ):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} {op} {mark(len(args))}")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)
