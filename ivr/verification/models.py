"""Verifications and their state machine, in plain code without I/O.

    pending ──verify──> verified
       │ ──expire──> expired        (at expires_at, whether or not anyone polls)
       └──cancel──> cancelled       (by the portal, or superseded by a newer one)

Terminal states never change again. Times are POSIX seconds (UTC).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from random import Random

from ivr.numbers import national_format


class Status(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self is not Status.PENDING


class InvalidTransition(Exception):
    """A terminal verification was asked to change."""

    def __init__(self, verification: Verification, target: Status) -> None:
        super().__init__(f"verification {verification.id} is {verification.status}, not pending")
        self.verification = verification
        self.target = target


# base64url's alphabet in its own order, and the same 64 characters in ASCII order.
_URLSAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ASCII_ORDER = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_SORTABLE = bytes.maketrans(_URLSAFE, _ASCII_ORDER)


def time_ordered_id(prefix: str, now: float, random_bytes: int) -> str:
    """``prefix`` and 6 bytes of ``now`` in milliseconds then ``random_bytes`` random
    bytes, in base64url's characters put in ASCII order, so that ids sort (as text, in
    any database) by the millisecond they were made in.

    Why not just random: a random primary key lands every insert on a random page of
    the key's B-tree, so each group commit and checkpoint writes a leaf page per insert
    rather than the few at the end. Inserting a verification row into a table of
    100,000, 16 to a commit, SQLite's CPU (commits and checkpoints included) was 39-51
    us with random ids and 26-40 us with these, the two alternating four times. The id
    keeps the length and alphabet ``secrets.token_urlsafe`` gives the same number of
    bytes, and 80 bits or more of it are random (unguessable); it tells when it was
    made, which the API says anyway (``created_at``)."""
    stamp = min(max(int(now * 1000), 0), 2**48 - 1)
    raw = stamp.to_bytes(6, "big") + secrets.token_bytes(random_bytes)
    return prefix + base64.urlsafe_b64encode(raw).translate(_SORTABLE).rstrip(b"=").decode()


def new_id(now: float) -> str:
    return time_ordered_id("vrf_", now, 10)


@functools.lru_cache(maxsize=256)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso(ts: float | None) -> str | None:
    """``2026-11-27T14:54:35.123Z``: what ``datetime.fromtimestamp(ts, UTC).isoformat(
    timespec="milliseconds")`` writes (microseconds rounded half-even, then cut to
    milliseconds), with the date and time to the second formatted once per second; every
    API answer and callback body has two to four of these."""
    if ts is None:
        return None
    second = math.floor(ts)
    micro = round((ts - second) * 1e6)
    if micro >= 1_000_000:  # rounded up into the next second
        second, micro = second + 1, micro - 1_000_000
    return f"{_iso_second(second)}.{micro // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Verification:
    id: str
    phone_number: str  # E.164
    dial_number: str  # E.164 DID the holder must call
    status: Status
    created_at: float
    expires_at: float
    reference: str | None = None
    callback_url: str | None = None
    # Once verified: when, by which call, over which trunk, and the caller as received.
    verified_at: float | None = None
    channel_id: str | None = None
    trunk: str | None = None
    caller_number: str | None = None
    # Once expired or cancelled.
    ended_at: float | None = None
    cancel_reason: str | None = None
    portal: str | None = None  # the portal that created it (its callbacks, its secrets)

    @classmethod
    def new(
        cls,
        phone_number: str,
        dial_number: str,
        now: float,
        ttl: float,
        reference: str | None = None,
        callback_url: str | None = None,
        portal: str | None = None,
    ) -> Verification:
        return cls(
            id=new_id(now),
            phone_number=phone_number,
            dial_number=dial_number,
            status=Status.PENDING,
            created_at=now,
            expires_at=now + ttl,
            reference=reference,
            callback_url=callback_url,
            portal=portal,
        )

    def is_due(self, now: float) -> bool:
        """Pending but past its expiry time (the expiry task has not run yet)."""
        return self.status is Status.PENDING and now >= self.expires_at

    def verify(self, now: float, channel_id: str, trunk: str, caller_number: str) -> Verification:
        if self.status is not Status.PENDING or self.is_due(now):
            raise InvalidTransition(self, Status.VERIFIED)
        return dataclasses.replace(
            self,
            status=Status.VERIFIED,
            verified_at=now,
            channel_id=channel_id,
            trunk=trunk,
            caller_number=caller_number,
        )

    def expire(self, now: float) -> Verification:
        if self.status is not Status.PENDING:
            raise InvalidTransition(self, Status.EXPIRED)
        return dataclasses.replace(self, status=Status.EXPIRED, ended_at=max(now, self.expires_at))

    def cancel(self, now: float, reason: str = "cancelled") -> Verification:
        if self.status is not Status.PENDING:
            raise InvalidTransition(self, Status.CANCELLED)
        return dataclasses.replace(
            self, status=Status.CANCELLED, ended_at=now, cancel_reason=reason
        )

    def to_api(self) -> dict[str, object]:
        """The verification as the portal API shows it."""
        out: dict[str, object] = {
            "id": self.id,
            "status": str(self.status),
            "phone_number": self.phone_number,
            "dial_number": {
                "e164": self.dial_number,
                "national": national_format(self.dial_number),
            },
            "reference": self.reference,
            "callback_url": self.callback_url,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
        }
        if self.status is Status.VERIFIED:
            out["verified"] = {
                "at": iso(self.verified_at),
                "call_id": self.channel_id,
                "trunk": self.trunk,
                "caller_number": self.caller_number,
            }
        if self.status in (Status.EXPIRED, Status.CANCELLED):
            out["ended_at"] = iso(self.ended_at)
        if self.status is Status.CANCELLED:
            out["cancel_reason"] = self.cancel_reason
        return out


def choose_dial_number(
    pool: Sequence[str], pending_same_number: Sequence[Verification], rng: Random
) -> tuple[str, Verification | None]:
    """Pick the DID for a new verification of one phone number.

    At random among the DIDs no other pending verification of that number holds (a number
    per session, so a call proves both the phone and the session). When every DID is
    held, the oldest pending one is superseded and its DID reused.
    Returns the DID and the verification to supersede, if any.
    """
    if not pool:
        raise ValueError("no authentication numbers configured")
    held = {v.dial_number for v in pending_same_number}
    free = [d for d in pool if d not in held]
    if free:
        return rng.choice(free), None
    oldest = min(pending_same_number, key=lambda v: (v.created_at, v.id))
    return oldest.dial_number, oldest
