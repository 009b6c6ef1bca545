"""The product's vocabularies, typed once and used everywhere.

Each is a ``StrEnum``: it compares equal to its string, so it goes into JSON, SQL, metric
labels and settings files unchanged, and a typo in code is a type error, not a new word.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What became of one call (recorded for every call, counted in ``/metrics``)."""

    VERIFIED = "verified"
    WITHHELD = "withheld"
    NOT_ELIGIBLE = "not_eligible"
    NO_PENDING = "no_pending"
    REJECTED_SOURCE = "rejected_source"
    FAILED = "failed"


class Absence(StrEnum):
    """Why no number was shown, as Japanese phones display it."""

    USER_WITHHELD = "user_withheld"  # 非通知
    PAYPHONE = "payphone"  # 公衆電話
    UNAVAILABLE = "unavailable"  # 表示圏外
    UNKNOWN = "unknown"


class AnswerMode(StrEnum):
    """How a DID ends a call (docs/operations.md)."""

    ANSWER = "answer"  # 200 OK, prompt, BYE: the caller pays a few seconds
    EARLY_MEDIA = "early_media"  # 183 with the prompt, never answered: free for the caller
    REJECT = "reject"  # no prompt, a final response at once


class ReleaseCause(StrEnum):
    """ARI hangup reasons for an unanswered call; ``sip_status`` is the final response
    Asterisk 22 sends for each (LAB-NOTES; every one also carries ``Reason: Q.850``)."""

    BUSY = "busy"
    NORMAL = "normal"
    REJECTED = "rejected"
    NO_ANSWER = "no_answer"
    NORMAL_UNSPECIFIED = "normal_unspecified"
    CONGESTION = "congestion"
    TIMEOUT = "timeout"
    CODEC_MISMATCH = "codec_mismatch"
    FAILURE = "failure"
    INTERWORKING = "interworking"
    UNALLOCATED = "unallocated"
    NUMBER_INCOMPLETE = "number_incomplete"

    @property
    def sip_status(self) -> int:
        return _SIP_STATUS[self]

    @property
    def q850(self) -> int:
        """The cause code ARI's hangup gives this reason (``res/ari/resource_channels.c``),
        for the dialplan's ``Hangup()`` when the release happens there."""
        return _Q850[self]


_SIP_STATUS = {
    ReleaseCause.BUSY: 486,
    ReleaseCause.NORMAL: 603,
    ReleaseCause.REJECTED: 403,
    ReleaseCause.NO_ANSWER: 480,
    ReleaseCause.NORMAL_UNSPECIFIED: 480,
    ReleaseCause.CONGESTION: 503,
    ReleaseCause.TIMEOUT: 408,
    ReleaseCause.CODEC_MISMATCH: 488,
    ReleaseCause.FAILURE: 500,
    ReleaseCause.INTERWORKING: 500,
    ReleaseCause.UNALLOCATED: 404,
    ReleaseCause.NUMBER_INCOMPLETE: 484,
}


_Q850 = {
    ReleaseCause.BUSY: 17,
    ReleaseCause.NORMAL: 16,
    ReleaseCause.REJECTED: 21,
    ReleaseCause.NO_ANSWER: 19,
    ReleaseCause.NORMAL_UNSPECIFIED: 31,
    ReleaseCause.CONGESTION: 34,
    ReleaseCause.TIMEOUT: 18,
    ReleaseCause.CODEC_MISMATCH: 58,
    ReleaseCause.FAILURE: 38,
    ReleaseCause.INTERWORKING: 127,
    ReleaseCause.UNALLOCATED: 1,
    ReleaseCause.NUMBER_INCOMPLETE: 28,
}


class OutboxStatus(StrEnum):
    """Where a callback event stands."""

    PENDING = "pending"  # to be delivered (now or at its next attempt)
    DELIVERED = "delivered"  # a 2xx came back
    FAILED = "failed"  # retries exhausted or refused by the portal; replayable
    NO_URL = "no_url"  # nowhere to send it
