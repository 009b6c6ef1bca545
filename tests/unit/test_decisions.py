"""The product's decisions, pure: create plans, call matching, cancel, expiry."""

from __future__ import annotations

from random import Random

import pytest

from ivr.verification import decisions
from ivr.verification.decisions import IdempotentEntry, plan_cancel, plan_create, plan_match
from ivr.verification.errors import IdempotencyConflict, NotFound, NotPending
from ivr.verification.models import Status, Verification
from ivr.verification.ports import CallRecord, NewVerification
from ivr.vocabulary import AnswerMode, OutboxStatus, Outcome

POOL = ("+81355550001", "+81355550002")
PHONE = "+819012345678"
T0 = 1_800_000_000.0


def req(key: str | None = None, fingerprint: str = "f", ttl: float = 180.0) -> NewVerification:
    return NewVerification(PHONE, "ref", "http://127.0.0.1/h", ttl, key, "p", fingerprint, "p")


def pending(did: str, created: float = T0, ttl: float = 180.0) -> Verification:
    return Verification.new(PHONE, did, created, ttl)


def call(did: str = POOL[0]) -> CallRecord:
    return CallRecord(
        "ch-1", did, "carrier", "090****5678", "allowed", None, Outcome.NO_PENDING, None,
        AnswerMode.EARLY_MEDIA, T0, T0,
    )  # fmt: skip


def test_a_first_create_takes_a_free_did() -> None:
    plan = plan_create(req(), None, [], POOL, T0, Random(1))
    v = plan.verification
    assert not plan.replayed and plan.terminal == ()
    assert v.status is Status.PENDING and v.dial_number in POOL and v.expires_at == T0 + 180
    assert (v.phone_number, v.reference, v.callback_url, v.portal) == (
        PHONE,
        "ref",
        "http://127.0.0.1/h",
        "p",
    )


def test_the_same_key_and_body_replay_another_body_conflicts() -> None:
    first = pending(POOL[0])
    entry = IdempotentEntry("f", first, T0)
    plan = plan_create(req("k", "f"), entry, [first], POOL, T0 + 5, Random(1))
    assert plan.replayed and plan.verification is first and plan.terminal == ()
    with pytest.raises(IdempotencyConflict):
        plan_create(req("k", "other"), entry, [first], POOL, T0 + 5, Random(1))


def test_a_key_older_than_a_day_is_forgotten() -> None:
    entry = IdempotentEntry("f", pending(POOL[0]), T0)
    later = T0 + decisions.IDEMPOTENCY_TTL
    plan = plan_create(req("k", "other"), entry, [], POOL, later, Random(1))
    assert not plan.replayed


def test_a_held_did_is_avoided_and_the_oldest_superseded_when_all_are_held() -> None:
    a, b = pending(POOL[0], T0), pending(POOL[1], T0 + 1)
    assert (
        plan_create(req(), None, [a], POOL, T0 + 2, Random(1)).verification.dial_number == (POOL[1])
    )
    plan = plan_create(req(), None, [b, a], POOL, T0 + 2, Random(1))
    [old] = plan.superseded
    assert old.id == a.id and old.status is Status.CANCELLED and old.cancel_reason == "superseded"
    assert plan.verification.dial_number == a.dial_number and plan.terminal == (old,)


def test_overdue_ones_are_expired_and_free_their_did() -> None:
    a = pending(POOL[0], T0, ttl=60)
    b = pending(POOL[1], T0 + 1)
    plan = plan_create(req(), None, [a, b], POOL, T0 + 60, Random(1))
    assert [v.id for v in plan.expired] == [a.id] and plan.superseded == ()
    assert plan.expired[0].status is Status.EXPIRED
    assert plan.verification.dial_number == POOL[0]


def test_a_call_verifies_the_candidate() -> None:
    v = pending(POOL[0])
    plan = plan_match(call(), v, "09012345678", T0 + 10)
    assert plan.record.outcome is Outcome.VERIFIED and plan.record.verification_id == v.id
    assert plan.verified is plan.changed and plan.changed is not None
    assert plan.changed.status is Status.VERIFIED and plan.changed.caller_number == "09012345678"
    assert plan.changed.channel_id == "ch-1" and plan.changed.trunk == "carrier"


@pytest.mark.parametrize(
    ("candidate", "reason", "changed_status"),
    [
        (None, "no_pending_verification", None),
        (pending(POOL[0], ttl=10), "expired", Status.EXPIRED),
        (pending(POOL[0]).cancel(T0 + 1), "no_pending_verification", None),
    ],
)
def test_a_call_without_a_live_candidate_verifies_nothing(
    candidate: Verification | None, reason: str, changed_status: Status | None
) -> None:
    plan = plan_match(call(), candidate, "x", T0 + 10)
    assert plan.record.outcome is Outcome.NO_PENDING and plan.record.reason == reason
    assert plan.verified is None
    assert (plan.changed.status if plan.changed else None) == changed_status


def test_cancel() -> None:
    v = pending(POOL[0])
    assert plan_cancel(v.id, v, T0 + 1, "cancelled").status is Status.CANCELLED
    assert plan_cancel(v.id, v, T0 + 180, "cancelled").status is Status.EXPIRED
    with pytest.raises(NotFound):
        plan_cancel("vrf_x", None, T0, "cancelled")
    with pytest.raises(NotPending) as info:
        plan_cancel(v.id, v.cancel(T0), T0 + 1, "cancelled")
    assert info.value.details == {"current_status": "cancelled"}


def test_expiry_takes_only_the_overdue() -> None:
    due, live = pending(POOL[0], ttl=30), pending(POOL[1], ttl=300)
    assert [v.id for v in decisions.plan_expiry([due, live], T0 + 30)] == [due.id]


def test_the_outbox_event_of_a_terminal_transition() -> None:
    v = pending(POOL[0]).cancel(T0 + 3)
    e = decisions.outbox_event(v, T0 + 3)
    assert e.id.startswith("msg_") and e.type == "verification.cancelled"
    assert e.status is OutboxStatus.PENDING and e.attempts == 0
    assert e.next_attempt_at == e.retry_since == e.created_at == T0 + 3
    assert (e.callback_url, e.portal, e.verification_id) == (v.callback_url, v.portal, v.id)
    with pytest.raises(ValueError):
        decisions.outbox_event(pending(POOL[0]), T0)
