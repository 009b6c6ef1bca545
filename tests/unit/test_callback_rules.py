"""Callback retry rules, pure: backoff, Retry-After, and what one attempt decides."""

from __future__ import annotations

import email.utils
import random

import pytest

from ivr.callbacks import backoff, decide, retry_after
from ivr.config import CallbacksSettings
from ivr.verification.ports import OutboxEvent
from ivr.vocabulary import OutboxStatus

T0 = 1_800_000_000.0
SETTINGS = CallbacksSettings(backoff_base=1.0, backoff_max=600.0, max_age=3600.0)


def event(attempts: int = 0, retry_since: float = T0) -> OutboxEvent:
    return OutboxEvent(
        "msg_1", "vrf_1", "verification.verified", "{}", None, "p", T0,
        OutboxStatus.PENDING, attempts, T0, None, None, None, retry_since,
    )  # fmt: skip


def test_backoff_doubles_with_half_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 512.0), (11, 600.0)]:
        delay = backoff(attempt, 1.0, 600.0, rng)
        assert full / 2 <= delay <= full


@pytest.mark.parametrize("attempt", [1025, 5000, 10**9])
def test_backoff_never_overflows(attempt: int) -> None:
    # Attempts keep counting across manual retries; 2.0 ** 1024 overflowed before.
    assert 300.0 <= backoff(attempt, 1.0, 600.0, random.Random(1)) <= 600.0


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("120", T0) == 120.0
    assert retry_after(None, T0) is None and retry_after("soon", T0) is None
    date = email.utils.formatdate(T0 + 30, usegmt=True)
    assert retry_after(date, T0) == pytest.approx(30.0, abs=1.0)
    assert retry_after(email.utils.formatdate(T0 - 30, usegmt=True), T0) == 0.0


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_a_2xx_is_delivered(status: int) -> None:
    d = decide(event(), status, None, None, T0, SETTINGS, random.Random(1))
    assert d.status is OutboxStatus.DELIVERED and d.error is None


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301, 302])
def test_other_answers_fail_at_once(status: int) -> None:
    d = decide(event(), status, f"HTTP {status}", None, T0, SETTINGS, random.Random(1))
    assert d.status is OutboxStatus.FAILED


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503])
def test_timeouts_429_and_5xx_are_retried_with_backoff(status: int | None) -> None:
    d = decide(event(attempts=2), status, "boom", None, T0, SETTINGS, random.Random(1))
    assert d.status is OutboxStatus.PENDING
    assert T0 + 2.0 <= d.next_attempt_at <= T0 + 4.0  # the third attempt's window


def test_retry_after_is_honoured_when_longer() -> None:
    d = decide(event(), 503, "HTTP 503", 90.0, T0, SETTINGS, random.Random(1))
    assert d.next_attempt_at == T0 + 90.0


def test_gives_up_past_max_age() -> None:
    d = decide(event(5, T0 - 3590), 503, "HTTP 503", None, T0, SETTINGS, random.Random(1))
    assert d.status is OutboxStatus.FAILED and "gave up after 6 attempts" in (d.error or "")
