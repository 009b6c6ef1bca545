"""Rate limit rules, pure: token buckets and which limit a request or call hits."""

from __future__ import annotations

import pytest

from ivr.config import LimitsSettings
from ivr.ratelimit import Limits, TokenBucket, retry_after_header


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    b = TokenBucket(rate=2.0, burst=3)
    assert [b.take("k", 100.0) for _ in range(3)] == [None, None, None]
    wait = b.take("k", 100.0)
    assert wait == pytest.approx(0.5)
    assert b.take("k", 100.5) is None  # one token back after 0.5 s
    assert b.take("other", 100.5) is None  # keys are independent


def test_idle_keys_are_dropped_when_the_table_is_full() -> None:
    b = TokenBucket(rate=1.0, burst=1, max_keys=10)
    for i in range(10):
        b.take(i, 0.0)
    b.take("new", 5.0)  # the others are full again: dropped
    assert len(b) == 1


def test_retry_after_is_whole_seconds_never_zero() -> None:
    assert retry_after_header(0.01) == "1" and retry_after_header(1.2) == "2"


def test_limits_from_settings() -> None:
    limits = Limits(
        LimitsSettings(
            creates_per_second=1,
            creates_per_number_per_hour=2,
            checks_per_second=0,  # off
            calls_per_caller_per_minute=2,
            block_callers=("0312345678", "+8150"),
        )
    )
    assert limits.create("a", "+819012345678", 0.0) is None
    assert limits.create("a", "+819012345678", 0.0) is None  # burst of 2 for the portal
    hit = limits.create("a", "+819012345678", 0.0)
    assert hit is not None and hit[0] == "creates_per_second"
    assert limits.create("b", "+819012345678", 0.0) is not None  # third for the number
    assert limits.create("b", "+819012345678", 0.0)[0] == "creates_per_number_per_hour"  # type: ignore[index]
    assert all(limits.check("a", 0.0) is None for _ in range(100))
    assert limits.call("+81312345678", 0.0) == "blocked_caller"  # national prefix listed
    assert limits.call("+815012345678", 0.0) == "blocked_caller"
    assert [limits.call("+819011112222", 0.0) for _ in range(3)] == [
        None,
        None,
        "calls_per_caller_per_minute",
    ]
    assert limits.call("+819011112222", 30.0) is None  # one more after 30 s
