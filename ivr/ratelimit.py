"""Rate limits: token buckets per key, plain code without I/O or a clock of its own.

Each gateway limits what reaches it; behind a load balancer spreading over N gateways a
client gets up to N times the rate (docs/operations.md). Buckets of keys idle long
enough to be full again are dropped, so memory follows the active keys only.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

from ivr.config import LimitsSettings


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; one token per event."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[Hashable, _Bucket] = {}
        self._refill_time = burst / rate  # idle this long, a bucket is full again

    def take(self, key: Hashable, now: float) -> float | None:
        """None if the event may pass; else the seconds until it may (Retry-After)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate

    def _sweep(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if now - b.at >= self._refill_time]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:  # still full of busy keys: drop the oldest
            for k in sorted(self._buckets, key=lambda k: self._buckets[k].at)[
                : len(self._buckets) // 10 + 1
            ]:
                del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_header(seconds: float) -> str:
    """Whole seconds, never 0 (a client told 0 would retry at once)."""
    return str(max(1, math.ceil(seconds)))


class Limits:
    """The gateway's limits, from ``[limits]``; each method answers None (go on) or why
    not, with the seconds to wait where waiting helps."""

    def __init__(self, settings: LimitsSettings) -> None:
        def bucket(per_second: float, burst: float) -> TokenBucket | None:
            return TokenBucket(per_second, max(1.0, burst)) if per_second > 0 else None

        s = settings
        self.creates = bucket(s.creates_per_second, 2 * s.creates_per_second)
        self.creates_per_number = bucket(
            s.creates_per_number_per_hour / 3600, s.creates_per_number_per_hour
        )
        self.checks = bucket(s.checks_per_second, 2 * s.checks_per_second)
        self.calls = bucket(s.calls_per_caller_per_minute / 60, s.calls_per_caller_per_minute)
        self.blocked = settings.blocked_prefixes
        self.release_cause = settings.call_release_cause  # for refused calls

    def create(self, portal: str, e164: str | None, now: float) -> tuple[str, float] | None:
        if self.creates is not None and (wait := self.creates.take(portal, now)) is not None:
            return "creates_per_second", wait
        if e164 is not None and self.creates_per_number is not None:
            wait = self.creates_per_number.take(e164, now)
            if wait is not None:
                return "creates_per_number_per_hour", wait
        return None

    def check(self, portal: str, now: float) -> tuple[str, float] | None:
        if self.checks is not None and (wait := self.checks.take(portal, now)) is not None:
            return "checks_per_second", wait
        return None

    def call(self, caller_e164: str, now: float) -> str | None:
        if caller_e164.startswith(self.blocked):  # an empty tuple matches nothing
            return "blocked_caller"
        if self.calls is not None and self.calls.take(caller_e164, now) is not None:
            return "calls_per_caller_per_minute"
        return None
